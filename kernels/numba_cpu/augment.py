"""Image augmentation's resampling: one affine warp per sample, bilinear, on the thread pool.

x, out (N, C, H, W) float32; matrices (N, 2, 3) float64 map an output pixel (y, x, 1) to
the input position it reads (see kernels/training_reference.affine_resample, the reference).
"""

from __future__ import annotations

import numpy as np

from .jit import launch, parallel_kernel, prange


@parallel_kernel
def _affine_resample(x, matrices, fill, out):
    samples, channels, height, width = x.shape
    for n in prange(samples):
        a = matrices[n]
        for y in range(height):
            for xo in range(width):
                sy = a[0, 0] * y + a[0, 1] * xo + a[0, 2]
                sx = a[1, 0] * y + a[1, 1] * xo + a[1, 2]
                y0, x0 = np.floor(sy), np.floor(sx)
                fy, fx = sy - y0, sx - x0
                iy, ix = int(y0), int(x0)
                for c in range(channels):
                    total = 0.0
                    for dy in range(2):
                        for dx in range(2):
                            weight = (fy if dy else 1 - fy) * (fx if dx else 1 - fx)
                            yy, xx = iy + dy, ix + dx
                            if 0 <= yy < height and 0 <= xx < width:
                                total += weight * x[n, c, yy, xx]
                            else:
                                total += weight * fill
                    out[n, c, y, xo] = total


def affine_resample(x, matrices, fill, out):
    launch(_affine_resample, x.size * 4, x, matrices, np.float64(fill), out)

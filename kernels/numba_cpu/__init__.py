"""Numba CPU kernels, one file per topic, re-exported by :mod:`fastcnn.kernels.numba_backend`."""

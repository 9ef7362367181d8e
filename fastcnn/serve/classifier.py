"""What the page asks of the model: one uploaded picture in, its top classes and the
feature maps of every convolution out, safe to call from many threads at once."""

from __future__ import annotations

import base64
import io
import threading

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..backend import backend_name, use_backend
from ..datasets.image import prepare_digit
from ..errors import InputError
from ..layers import Conv2D
from ..plots import layer_outputs

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
"""The largest upload accepted (a phone photo is a few MB)."""

MAX_PIXELS = 40_000_000
"""Larger images are refused before decoding (a small file can hold a huge image)."""

TOP = 5
"""How many classes the page lists."""

MAP_COLUMNS = 8
"""Feature maps per row in a convolution's grid."""


class UploadTooLarge(InputError):
    """An upload over :data:`MAX_UPLOAD_BYTES` (HTTP 413)."""


def too_large_message(size: int | None) -> str:
    got = f"{size / 2**20:.1f} MB" if size is not None else "more than that"
    return (f"The file is too large ({got}); the limit is {MAX_UPLOAD_BYTES // 2**20} MB. "
            "Drop a smaller picture of one character.")


def png_data_url(pixels: np.ndarray) -> str:
    """A data: URL of the PNG of uint8 pixels (H, W) gray or (H, W, 3) RGB."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def feature_map_grid(maps: np.ndarray) -> np.ndarray:
    """(C, H, W) float -> uint8 RGB grid (rows*(H+1)-1, cols*(W+1)-1, 3), each map scaled
    to its own range and coloured with viridis, maps separated by 1 px white lines."""
    from matplotlib import colormaps

    channels, height, width = maps.shape
    cols = min(MAP_COLUMNS, channels)
    rows = -(-channels // cols)
    low = maps.min(axis=(1, 2), keepdims=True)
    span = maps.max(axis=(1, 2), keepdims=True) - low
    scaled = np.divide(maps - low, span, out=np.zeros_like(maps), where=span > 0)
    colours = (colormaps["viridis"](scaled)[..., :3] * 255).astype(np.uint8)
    grid = np.full((rows * (height + 1) - 1, cols * (width + 1) - 1, 3), 255, dtype=np.uint8)
    for c in range(channels):
        r, k = divmod(c, cols)
        grid[r * (height + 1):r * (height + 1) + height, k * (width + 1):k * (width + 1) + width] = colours[c]
    return grid


def open_image(data: bytes) -> Image.Image:
    """The uploaded bytes as a decoded PIL image; InputError saying what was wrong."""
    if not data:
        raise InputError("The upload is empty: draw a character or drop a picture of one.")
    if len(data) > MAX_UPLOAD_BYTES:
        raise UploadTooLarge(too_large_message(len(data)))
    try:
        image = Image.open(io.BytesIO(data))
        if image.width * image.height > MAX_PIXELS:
            raise InputError(f"The image is {image.width}x{image.height} pixels, too many to "
                             "classify; drop a smaller picture.")
        image.load()
    except InputError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError,
            SyntaxError, EOFError):
        raise InputError("That file is not an image this page can read; drop a PNG, JPEG, GIF, "
                         "BMP or WebP picture.") from None
    return image


class Classifier:
    """Runs one image at a time through ``model``: its layers reuse their buffers between
    calls, so concurrent requests take turns. Inference runs on the backend that was
    active when the classifier was made (the CLI's --backend, FASTCNN_BACKEND or auto)."""

    def __init__(self, model, class_names):
        if tuple(model.input_shape) != (1, 28, 28):
            raise InputError(f"model {model.title!r} takes inputs of shape {tuple(model.input_shape)}; "
                             "the page draws 28x28 grayscale characters (1, 28, 28)")
        if len(class_names) != model.output_shape[0]:
            raise InputError(f"model {model.title!r} scores {model.output_shape[0]} classes, but "
                             f"{len(class_names)} class names were given")
        self.model = model
        self.class_names = [str(name) for name in class_names]
        self.backend = backend_name()
        self.convolutions = [i for i, layer in enumerate(model.layers) if isinstance(layer, Conv2D)]
        self._lock = threading.Lock()

    def classify(self, data: bytes) -> dict:
        """Image bytes -> {"top": [{"index", "name", "probability"}] (best first),
        "probabilities": (classes,), "input": data URL of the 28x28 image the model saw,
        "feature_maps": [{"layer", "shape", "image"}] one per convolution}."""
        image = open_image(data)
        try:
            digit = prepare_digit(image)
        except InputError:
            raise InputError("Nothing to classify: the image is blank. Draw a character, or drop "
                             "a picture of one.") from None
        x = (digit.astype(np.float32) / 255)[None, None]
        with self._lock, use_backend(self.backend):
            probabilities = self.model.predict(x)[0]
            outputs = layer_outputs(self.model, x, upto=self.convolutions[-1]) \
                if self.convolutions else []
        order = np.argsort(probabilities)[::-1][:TOP]
        return {
            "top": [{"index": int(k), "name": self.class_names[k],
                     "probability": float(probabilities[k])} for k in order],
            "probabilities": [float(p) for p in probabilities],
            "input": png_data_url(digit),
            "feature_maps": [{"layer": outputs[i][0], "shape": list(outputs[i][1].shape),
                              "image": png_data_url(feature_map_grid(outputs[i][1]))}
                             for i in self.convolutions],
        }

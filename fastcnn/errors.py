"""The errors fastcnn raises: each says what was wrong and what to do."""


class FastCNNError(Exception):
    """Base class of every fastcnn error."""


class BackendError(FastCNNError, RuntimeError):
    """An unknown backend name, or a backend that cannot run on this machine."""


class InputError(FastCNNError, ValueError):
    """Arrays with the wrong shape, dtype, range or values (NaN, out-of-range labels)."""


class DatasetError(FastCNNError, OSError):
    """A dataset file that is missing, truncated, corrupted or fails its checksum."""


class CheckpointError(FastCNNError, OSError):
    """A saved model that cannot be read or does not match the model."""


class ExportError(FastCNNError, ValueError):
    """A model that cannot be written in an exchange format (a layer with no ONNX form)."""

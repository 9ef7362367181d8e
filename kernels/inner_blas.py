"""The BLAS that the compiled CPU backends call from inside their parallel loops.

numba's ``np.dot`` and the Cython kernels both multiply with SciPy's BLAS
(``scipy.linalg.cython_blas``), one call per sample or piece on each thread of
their own pool. That library must then run on its calling thread alone, or
its threads and the pool's would oversubscribe the cores: :func:`load` imports
it and limits the libraries the import brought to one thread (a library that
was loaded already, e.g. one shared with NumPy, is left to fastcnn.backend's
``BLAS_THREADS`` policy, which pins every BLAS while such a backend is active).
"""

from __future__ import annotations

from types import ModuleType


def load(backend: str) -> ModuleType:
    """``scipy.linalg.cython_blas``, its new libraries limited to one thread; ImportError
    naming ``backend`` when SciPy is missing."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # a declared dependency; without it BLAS keeps its own threads
        ThreadpoolController = None

    def loaded():
        if ThreadpoolController is None:
            return []
        return ThreadpoolController().select(user_api="blas").lib_controllers

    before = {lib.filepath for lib in loaded()}
    try:
        from scipy.linalg import cython_blas
    except ImportError as exc:
        raise ImportError(
            f"the {backend} backend needs SciPy (its kernels call SciPy's BLAS), which could "
            f"not be imported ({exc}); install it with `pip install scipy` or choose another "
            "backend") from exc
    for lib in loaded():
        if lib.filepath not in before:
            lib.set_num_threads(1)
    return cython_blas

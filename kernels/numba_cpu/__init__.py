"""The numba CPU kernels, one file per topic; :mod:`fastcnn.kernels.numba_backend` re-exports them."""

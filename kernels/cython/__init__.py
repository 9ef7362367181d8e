"""Compiled kernels of the ``cython`` backend (``_kernels``, built from ``_kernels.pyx``
by setup.py); :mod:`fastcnn.kernels.cython_backend` maps the contract onto them."""

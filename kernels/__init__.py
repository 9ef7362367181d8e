"""Kernel backends, installed as ``fastcnn.kernels``: one module per backend,
each implementing the contract in :mod:`fastcnn.kernels.contract`."""

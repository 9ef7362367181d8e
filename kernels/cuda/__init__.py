"""The ``cuda`` backend's kernels, written with Numba's CUDA target, by topic.

``runtime`` (import guard, GPU check, launch sizes, memory), ``device`` (shared
device functions and reductions), ``gemm`` (tiled shared-memory GEMM),
``conv``, ``pool``, ``dense``, ``rows`` (softmax and losses) and
``elementwise`` (activations, dropout, optimizers). ``fastcnn.kernels.cuda_backend``
gathers them into the module the backend registry loads.
"""

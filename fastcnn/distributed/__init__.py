"""Cross-validation and sweeps, in this process, on a local process pool or on Dask.

    import fastcnn
    result = fastcnn.cross_validate("keras_kfold_cnn", x, y, cv=5, executor="dask")
    search = fastcnn.grid_search("keras_kfold_cnn", {"lr": [1e-3, 1e-2]}, x, y, executor="local")

``jobs`` holds the one job (build, fit and score one fold), ``executors`` the ways
to run jobs (they only move jobs and results), ``search`` the functions and their
results. Dask is imported only when an executor needs it.
"""

from .executors import CHOICES, JobError, get_executor, use_executor
from .search import CVResult, SearchResult, cross_validate, grid_search, loguniform, random_search

__all__ = ["CHOICES", "CVResult", "JobError", "SearchResult", "cross_validate", "get_executor",
           "grid_search", "loguniform", "random_search", "use_executor"]

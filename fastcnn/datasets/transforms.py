"""Array helpers between loading and training: scaling, layout, labels, splits, batches.

Every function that shuffles takes ``seed`` (an int, None for fresh entropy, or
a ``numpy.random.Generator`` that is advanced), so runs are reproducible.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..errors import InputError

Seed = int | np.random.Generator | None


def _rng(seed: Seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def scale(x: np.ndarray) -> np.ndarray:
    """uint8 pixels 0..255 -> float32 in [0, 1], same shape."""
    x = np.asarray(x)
    if x.dtype != np.uint8:
        raise InputError(f"scale expects uint8 pixels, got {x.dtype} (already scaled?)")
    return x.astype(np.float32) * np.float32(1 / 255)


def to_nchw(x: np.ndarray) -> np.ndarray:
    """Add the channel axis: (N, H, W) -> (N, 1, H, W); (H, W) -> (1, 1, H, W).

    An array already of shape (N, 1, H, W) is returned as it is.
    """
    x = np.asarray(x)
    if x.ndim == 2:
        return x[None, None]
    if x.ndim == 3:
        return x[:, None]
    if x.ndim == 4 and x.shape[1] == 1:
        return x
    raise InputError(f"to_nchw expects (N, H, W) or (H, W) images, got shape {x.shape}")


def _labels(y, name: str = "y") -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise InputError(f"{name} must be a 1-D array of integer class indices, "
                         f"got {y.dtype} of shape {y.shape}")
    return y


def one_hot(y: np.ndarray, num_classes: int | None = None, dtype=np.float32) -> np.ndarray:
    """Class indices (N,) -> one-hot rows (N, num_classes); ``num_classes`` defaults to max+1."""
    y = _labels(y)
    if num_classes is None:
        num_classes = int(y.max()) + 1 if y.size else 0
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise InputError(f"labels must be in 0..{num_classes - 1}, got {y.min()}..{y.max()}")
    out = np.zeros((y.shape[0], num_classes), dtype=dtype)
    out[np.arange(y.shape[0]), y] = 1
    return out


def _check_pair(x: np.ndarray, y: np.ndarray | None) -> None:
    if y is not None and len(x) != len(y):
        raise InputError(f"x and y differ in length: {len(x)} vs {len(y)}")


def _validation_count(n: int, val_size: float | int) -> int:
    if isinstance(val_size, (float, np.floating)):
        if not 0 < val_size < 1:
            raise InputError(f"a fractional val_size must be in (0, 1), got {val_size}")
        count = int(round(n * val_size))
    else:
        count = int(val_size)
    if not 1 <= count <= n - 1:
        raise InputError(f"val_size={val_size} leaves {count} of {n} samples for validation; "
                         "both parts need at least one")
    return count


def _stratified_validation(y: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``count`` samples, each class represented in proportion (largest remainder)."""
    classes, members = np.unique(y, return_inverse=True)
    sizes = np.bincount(members)
    quotas = sizes * (count / len(y))
    take = np.floor(quotas).astype(int)
    remainders = quotas - take
    order = np.lexsort((rng.random(len(classes)), -remainders))
    take[order[: count - take.sum()]] += 1
    chosen = [rng.permutation(np.flatnonzero(members == c))[:take[c]] for c in range(len(classes))]
    return np.concatenate(chosen)


def train_val_split(x: np.ndarray, y: np.ndarray, val_size: float | int = 0.1, *,
                    seed: Seed = 0, stratify: bool = False, shuffle: bool = True):
    """Split ``(x, y)`` into ``(x_train, y_train), (x_val, y_val)``.

    ``val_size``: a fraction in (0, 1) or a sample count. ``stratify`` keeps
    each class's share equal in both parts. Without ``shuffle`` the last
    samples become the validation set (in order). Same seed, same split.
    """
    x = np.asarray(x)
    y = _labels(y)
    _check_pair(x, y)
    n = len(x)
    count = _validation_count(n, val_size)
    rng = _rng(seed)
    if stratify:
        val_idx = np.sort(_stratified_validation(y, count, rng))
        mask = np.ones(n, dtype=bool)
        mask[val_idx] = False
        train_idx = np.flatnonzero(mask)
        if shuffle:
            train_idx, val_idx = rng.permutation(train_idx), rng.permutation(val_idx)
    else:
        order = rng.permutation(n) if shuffle else np.arange(n)
        train_idx, val_idx = order[: n - count], order[n - count:]
    return (x[train_idx], y[train_idx]), (x[val_idx], y[val_idx])


def kfold(n: int, k: int = 5, *, seed: Seed = 0, shuffle: bool = True, stratify=None,
          sklearn: bool = False) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(train_idx, val_idx)`` for each of ``k`` folds over ``n`` samples.

    The validation folds partition 0..n-1 (sizes differ by at most one, the first
    ``n % k`` folds being the larger); ``train_idx`` and ``val_idx`` are sorted.
    ``stratify``: labels (n,); each class is then spread evenly over the folds
    (its count in any two folds differs by at most one). ``sklearn=True`` gives
    exactly the folds of scikit-learn's ``KFold(k, shuffle=shuffle,
    random_state=seed)``: a ``numpy.random.RandomState(seed)`` permutation cut into
    contiguous folds (the default draws the permutation from ``default_rng(seed)``).
    """
    n, k = int(n), int(k)
    if not 2 <= k <= n:
        raise InputError(f"kfold needs 2 <= k <= n, got k={k}, n={n}")
    if sklearn:
        if stratify is not None:
            raise InputError("kfold(sklearn=True) reproduces KFold, which does not stratify; "
                             "drop stratify or sklearn")
        if isinstance(seed, np.random.Generator):
            raise InputError("kfold(sklearn=True) needs an int seed (KFold's random_state), "
                             "not a Generator")
        order = np.random.RandomState(seed).permutation(n) if shuffle else np.arange(n)
        folds = np.array_split(order, k)
    elif stratify is not None:
        folds = _stratified_folds(_labels(stratify, "stratify"), n, k, _rng(seed), shuffle)
    else:
        folds = np.array_split(_rng(seed).permutation(n) if shuffle else np.arange(n), k)
    for fold in folds:
        mask = np.ones(n, dtype=bool)
        mask[fold] = False
        yield np.flatnonzero(mask), np.sort(fold)


def _stratified_folds(y: np.ndarray, n: int, k: int, rng: np.random.Generator,
                      shuffle: bool) -> list[np.ndarray]:
    """Each class's members (shuffled), class after class, dealt to the folds in turn."""
    if len(y) != n:
        raise InputError(f"stratify has {len(y)} labels for {n} samples")
    members = [np.flatnonzero(y == c) for c in np.unique(y)]
    order = np.concatenate([rng.permutation(m) if shuffle else m for m in members])
    return [order[fold::k] for fold in range(k)]


def batches(x: np.ndarray, y: np.ndarray | None = None, batch_size: int = 64, *,
            shuffle: bool = True, seed: Seed = None, drop_last: bool = False) -> Iterator:
    """Yield mini-batches ``(x_batch, y_batch)`` (or ``x_batch`` when ``y`` is None).

    With ``shuffle`` the order is a permutation drawn from ``seed``: pass an int
    for a fixed order, or one Generator for a new order every epoch.
    ``drop_last`` skips a final batch smaller than ``batch_size``.
    """
    x = np.asarray(x)
    if y is not None:
        y = np.asarray(y)
    _check_pair(x, y)
    batch_size = int(batch_size)
    if batch_size < 1:
        raise InputError(f"batch_size must be at least 1, got {batch_size}")
    n = len(x)
    order = _rng(seed).permutation(n) if shuffle else None
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        index = order[start:start + batch_size] if shuffle else slice(start, start + batch_size)
        yield x[index] if y is None else (x[index], y[index])

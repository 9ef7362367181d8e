"""Numba set-up shared by every kernel file: cache location, import check, decorators, threads.

Compiled kernels are cached on disk (``cache=True``) so that only the first
process ever pays for compilation. An installed copy never writes into its own
folder: a cache there would outlive ``pip uninstall`` (pip removes only the files it
installed) and its leftover ``fastcnn/kernels/...`` folders would then shadow the
next install of fastcnn as an empty namespace package. So, unless the user has set
``NUMBA_CACHE_DIR`` (which always wins), this module points ``NUMBA_CACHE_DIR`` at
``$XDG_CACHE_HOME/fastcnn/numba`` (``~/.cache/fastcnn/numba``), or at
``<tempdir>/fastcnn-numba-<user>`` when that is not writable, *before* importing
numba; numba keeps each source folder's kernels in a subfolder of its own there
(named after the folder and a hash of its path), so several installs never mix.
A source checkout (``kernels/`` beside ``fastcnn/``, used in place or through
``pip install -e``) keeps numba's default, ``__pycache__`` beside the sources, which
git ignores and which goes away with the checkout.
Where nothing at all is writable, caching is off and each process compiles.
Numba keys each cache entry on its own file's contents only: after editing a
helper in one file (scalars.py, say), kernels in other files that inlined it would
load stale code (a helper that calls a symbol no longer there crashes the process), so
:func:`forget_stale_kernels` deletes every cached kernel of this package whenever any
of its source files changed.

Threads: numba's pool has ``NUMBA_NUM_THREADS`` threads (default: the number
of cores); :func:`set_num_threads` uses fewer, and :func:`launch` runs small
kernels on one thread. The big GEMMs run *inside* the parallel kernels: each
thread calls ``np.dot`` on its own share (numba calls SciPy's BLAS,
``scipy.linalg.cython_blas``), so every core multiplies and there is a single
thread pool. That BLAS must therefore run on its calling thread alone
(see fastcnn.kernels.inner_blas, loaded here), and fastcnn.backend keeps every
BLAS at one thread while the backend is active (``BLAS_THREADS``), for the few
small GEMMs left to NumPy between kernels.
"""

from __future__ import annotations

import getpass
import hashlib
import os
import tempfile
import types

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _writable_dir(path: str) -> bool:
    """True when ``path`` exists or can be created, and a file can be written in it."""
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError:
        return False
    return True


def _user_name() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in this environment (e.g. a container without passwd entry)
        return str(os.getuid()) if hasattr(os, "getuid") else "user"


def is_source_checkout(package_dir: str = PACKAGE_DIR) -> bool:
    """True when ``package_dir`` (.../kernels/numba_cpu) lies in a source checkout, where
    ``kernels/`` sits beside ``fastcnn/``; False in an installed copy, where it is
    ``fastcnn/kernels/numba_cpu``."""
    kernels = os.path.dirname(os.path.abspath(package_dir))
    return os.path.isfile(os.path.join(os.path.dirname(kernels), "fastcnn", "__init__.py"))


def choose_cache_dir(package_dir: str = PACKAGE_DIR, environ=None, writable=_writable_dir,
                     source_checkout: bool | None = None) -> str | None:
    """The directory numba should cache fastcnn's kernels in, or None to keep numba's choice.

    None when the user set ``NUMBA_CACHE_DIR``, or in a source checkout whose
    ``package_dir/__pycache__`` (numba's default) is writable; otherwise (an installed
    copy, writable or not) the first writable of the user cache
    (``$XDG_CACHE_HOME/fastcnn/numba``) and a per-user temp dir; NOWHERE when none is
    (the kernels then compile in every process). ``source_checkout`` defaults to
    :func:`is_source_checkout` of ``package_dir``.
    """
    environ = os.environ if environ is None else environ
    if environ.get("NUMBA_CACHE_DIR"):
        return None
    if source_checkout is None:
        source_checkout = is_source_checkout(package_dir)
    if source_checkout and writable(os.path.join(package_dir, "__pycache__")):
        return None
    user_cache = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    candidates = (os.path.join(user_cache, "fastcnn", "numba"),
                  os.path.join(tempfile.gettempdir(), f"fastcnn-numba-{_user_name()}"))
    for candidate in candidates:
        if writable(candidate):
            return candidate
    return NOWHERE


NOWHERE = ""
"""choose_cache_dir's answer when no directory is writable."""

CACHE_DIR = choose_cache_dir()
CACHE = CACHE_DIR != NOWHERE
"""False when nothing is writable: numba would refuse to build a cached kernel at all."""
if CACHE_DIR:
    os.environ["NUMBA_CACHE_DIR"] = CACHE_DIR

try:
    import numba
except ImportError as exc:
    raise ImportError(
        "the numba backend needs the 'numba' package, which could not be imported "
        f"({exc}); install it with `pip install numba` or choose another backend") from exc

from numba import njit, prange  # noqa: E402

from ..inner_blas import load as _load_inner_blas  # noqa: E402

_load_inner_blas("numba")  # what np.dot in the kernels calls

if CACHE_DIR and not numba.config.CACHE_DIR:
    # numba was imported before us (e.g. by the CUDA backend) and read its config then
    numba.config.CACHE_DIR = CACHE_DIR


SOURCES_STAMP = "fastcnn-kernel-sources.sha256"
"""The file, in each cache directory, naming the sources its cached kernels came from."""


def sources_digest(package_dir: str = PACKAGE_DIR) -> str:
    """sha256 of every .py file of this package (name and contents), in name order."""
    digest = hashlib.sha256()
    for name in sorted(os.listdir(package_dir)):
        if name.endswith(".py"):
            with open(os.path.join(package_dir, name), "rb") as handle:
                digest.update(name.encode() + b"\0" + handle.read() + b"\0")
    return digest.hexdigest()


def kernel_cache_dir(package_dir: str = PACKAGE_DIR) -> str:
    """Where numba caches this package's kernels: its own ``__pycache__``, or the
    directory numba mirrors it to under ``NUMBA_CACHE_DIR``."""
    if not numba.config.CACHE_DIR:
        return os.path.join(package_dir, "__pycache__")
    from numba.core.caching import _CacheLocator

    return os.path.join(numba.config.CACHE_DIR, _CacheLocator.get_suitable_cache_subpath(
        os.path.join(package_dir, "jit.py")))


def forget_stale_kernels(cache_dir: str | None = None, digest: str | None = None) -> bool:
    """Deletes the cached kernels (``*.nbi``, ``*.nbc``) in ``cache_dir`` (default:
    kernel_cache_dir()) unless its stamp names ``digest`` (default: sources_digest()),
    then writes the stamp. numba checks only the file a kernel is defined in, not the
    helpers inlined into it from other files. True when something was deleted."""
    cache_dir = kernel_cache_dir() if cache_dir is None else cache_dir
    digest = sources_digest() if digest is None else digest
    stamp = os.path.join(cache_dir, SOURCES_STAMP)
    try:
        with open(stamp) as handle:
            if handle.read().strip() == digest:
                return False
    except OSError:
        pass
    deleted = False
    for name in os.listdir(cache_dir) if os.path.isdir(cache_dir) else ():
        if name.endswith((".nbi", ".nbc")):
            try:
                os.unlink(os.path.join(cache_dir, name))
                deleted = True
            except FileNotFoundError:  # another process got there first
                pass
    from ...fileio import atomic_write
    from ...errors import CheckpointError

    try:
        with atomic_write(stamp, "w", create_folders=True) as handle:
            handle.write(digest + "\n")
    except CheckpointError:
        pass  # not writable: numba cannot cache here either
    return deleted


SOURCES_DIGEST = sources_digest()

if CACHE:
    forget_stale_kernels(digest=SOURCES_DIGEST)

WARM_MARK = "fastcnn-kernels-warm"
"""The file, in the cache directory, that fastcnn.warmup writes once it has compiled every
kernel the zoo's models train with: these sources, for this CPU."""


def _warm_key() -> str:
    """What a warm cache was compiled from: these sources, for this CPU and its features."""
    import llvmlite.binding as llvm

    cpu = numba.config.CPU_NAME or llvm.get_host_cpu_name()
    features = hashlib.sha256(" ".join(sorted(_compiled_features())).encode()).hexdigest()[:16]
    return f"{SOURCES_DIGEST} {cpu} {features}"


def cache_is_warm(cache_dir: str | None = None) -> bool:
    """True when fastcnn.warmup has filled the kernel cache for these sources and this CPU."""
    path = os.path.join(kernel_cache_dir() if cache_dir is None else cache_dir, WARM_MARK)
    try:
        with open(path) as handle:
            return CACHE and handle.read().strip() == _warm_key()
    except OSError:
        return False


def mark_warm(cache_dir: str | None = None) -> None:
    """Records that the kernel cache holds every kernel for these sources and this CPU."""
    from ...fileio import atomic_write

    path = os.path.join(kernel_cache_dir() if cache_dir is None else cache_dir, WARM_MARK)
    with atomic_write(path, "w", create_folders=True) as handle:
        handle.write(_warm_key() + "\n")


def _compiled_features() -> set:
    """The CPU features LLVM compiles numba's kernels for: NUMBA_CPU_FEATURES when set,
    else the host's (numba keeps the host's features when only NUMBA_CPU_NAME is set)."""
    if numba.config.CPU_FEATURES is not None:
        return {flag[1:] for flag in numba.config.CPU_FEATURES.split(",") if flag.startswith("+")}
    import llvmlite.binding as llvm

    return {name for name, present in llvm.get_host_cpu_features().items() if present}


def compiled_isa() -> str | None:
    """"avx512" (AVX-512F), "avx2" (AVX2 with FMA) or None: the vector ISA of numba's code."""
    features = _compiled_features()
    if "avx512f" in features:
        return "avx512"
    if {"avx2", "fma"} <= features:
        return "avx2"
    return None


ISA = compiled_isa()
"""The vector ISA numba compiles for here: kernels and the GEMM tile pick their shapes by it."""

FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}
"""fastmath flags that let LLVM reorder and vectorise sums but keep NaN and inf
semantics (no ``nnan``/``ninf``): a diverging loss still shows up as NaN."""

ERRORS = "numpy"
"""Division by zero gives inf or NaN, as in NumPy and the reference backend, instead of
raising ZeroDivisionError: the check Python's semantics need is a branch in every
division, and it keeps LLVM from vectorising loops that divide (sigmoid, softmax:
34x slower per element)."""


def _renamed(function, suffix: str):
    """A copy of ``function`` under another name: numba names a function's cache files
    after its qualified name, so a twin compiled with other options needs its own."""
    twin = types.FunctionType(function.__code__, function.__globals__,
                              function.__name__ + suffix, function.__defaults__,
                              function.__closure__)
    twin.__qualname__ = function.__qualname__ + suffix
    twin.__module__ = function.__module__
    twin.__doc__ = function.__doc__
    return twin


def _with_serial_twin(**options):
    """Decorator: ``njit(parallel=True, **options)``, plus ``.serial``: the same source
    compiled without threads (prange runs as range), which :func:`launch` calls for small
    work. Running a kernel on one thread by lowering the OpenMP team to one instead cost
    10-60 us: libgomp wakes the sleeping workers to resize its team, twice per call
    (a 288-element Adam update right after a parallel kernel: 17 us against 2 us)."""
    def decorate(function):
        kernel = njit(parallel=True, **options)(function)
        kernel.serial = njit(**options)(_renamed(function, "__serial"))
        return kernel
    return decorate


parallel_kernel = _with_serial_twin(cache=CACHE, error_model=ERRORS)
"""Decorator: a kernel whose outer ``prange`` loop runs on numba's thread pool."""

parallel_sum_kernel = _with_serial_twin(cache=CACHE, fastmath=FASTMATH, error_model=ERRORS)
"""Decorator: a parallel kernel whose inner sums may be reordered (see FASTMATH)."""

serial_kernel = njit(cache=CACHE, error_model=ERRORS)
"""Decorator: a single-threaded kernel (the losses: too few rows to split), or a piece of
work each thread of a parallel kernel calls, compiled once instead of inlined into
every caller (the GEMM's packing and tiles: inlined, they made the first compile 4x
longer)."""

serial_sum_kernel = njit(cache=CACHE, fastmath=FASTMATH, error_model=ERRORS)
"""Decorator: a serial kernel whose sums may be reordered (see FASTMATH)."""

inline_helper = njit(cache=CACHE, inline="always", error_model=ERRORS)
"""Decorator: a small helper that numba inlines into each kernel calling it."""

SERIAL_WORK = 1 << 15
"""Kernels over fewer elements than this run on the calling thread alone: a parallel
region costs more than it saves there, and on a busy machine it also waits for a
descheduled worker (a 64x10 dense epilogue: 7 us on 1 thread, 12-24 ms on 2 threads
of a 2-core machine at load 10)."""


def launch(kernel, work: int, *args):
    """Call the jitted ``kernel(*args)``; when ``work`` (elements touched) is below
    SERIAL_WORK, its serial twin on the calling thread instead (kernels made with
    parallel_kernel / parallel_sum_kernel have one), leaving the thread pool and the
    thread setting alone."""
    if work >= SERIAL_WORK:
        return kernel(*args)
    return getattr(kernel, "serial", kernel)(*args)


def set_num_threads(n: int) -> None:
    """Threads for the parallel kernels, clamped to [1, NUMBA_NUM_THREADS] (the pool
    size, fixed when numba starts). Like numba's own setting, it applies to the
    calling thread."""
    numba.set_num_threads(max(1, min(int(n), pool_size())))


def pool_size() -> int:
    """Threads in numba's pool (NUMBA_NUM_THREADS): the most a kernel can ever run on."""
    return numba.config.NUMBA_NUM_THREADS


def get_num_threads() -> int:
    """Threads the parallel kernels use now (numba.get_num_threads())."""
    return numba.get_num_threads()

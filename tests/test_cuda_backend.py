"""The cuda backend's own behaviour; tests/test_conformance.py checks every operation.

Without an NVIDIA GPU the conftest turns on Numba's CUDA simulator, which runs
every GPU thread in Python: shapes here stay tiny.
"""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fastcnn
from fastcnn.kernels import contract
from fastcnn.kernels import numpy_backend as reference

pytest.importorskip("numba_cuda", reason="numba-cuda is not installed (pip install fastcnn[cuda])")

from fastcnn.kernels.cuda import gemm as gemm_module  # noqa: E402
from fastcnn.kernels.cuda import runtime  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TILE = gemm_module.TILE_M
EDGE_SIZES = (1, TILE + 1, 2 * TILE + 1)       # 1, 17, 33 under the simulator


@pytest.fixture(scope="module")
def cuda_backend():
    try:
        with fastcnn.use_backend("cuda"):
            return fastcnn.get_backend()
    except fastcnn.BackendError as exc:
        pytest.skip(str(exc))


def rand(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def unset(*shape, dtype=np.float32):
    """An output buffer the kernels must overwrite (NaN shows any element they miss)."""
    return np.full(shape, -1 if dtype == np.int32 else np.nan, dtype=dtype)


def run_both(backend, op, *args):
    """Run ``op`` on the reference and on ``backend`` with copies of the same arguments.

    Returns (reference array, backend array fetched to the host) for every array argument.
    """
    host = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    device = [backend.to_device(a) if isinstance(a, np.ndarray) else a for a in args]
    getattr(reference, op)(*host)
    getattr(backend, op)(*device)
    return [(h, backend.to_host(d)) for h, d in zip(host, device) if isinstance(h, np.ndarray)]


def assert_pairs_close(pairs, tol=1e-5):
    for expected, actual in pairs:
        np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol)


def dense_case(rng, n, f, u):
    return rand(rng, n, f), rand(rng, u, f), rand(rng, u)


# ---- GEMM ------------------------------------------------------------------------------
@pytest.mark.parametrize("n,f,u", [(EDGE_SIZES[0], EDGE_SIZES[1], EDGE_SIZES[2]),
                                   (EDGE_SIZES[2], EDGE_SIZES[0], EDGE_SIZES[1]),
                                   (EDGE_SIZES[1], EDGE_SIZES[2], EDGE_SIZES[0])])
def test_gemm_handles_sizes_that_are_not_a_multiple_of_the_tile(cuda_backend, n, f, u):
    # dense uses all three operand layouts: x @ W^T, dout^T @ x and dout @ W
    rng = np.random.default_rng(n * 100 + f)
    x, weight, bias = dense_case(rng, n, f, u)
    assert_pairs_close(run_both(cuda_backend, "dense_forward", x, weight, bias, "relu",
                                unset(n, u)))
    out = np.maximum(x @ weight.T + bias, 0)
    assert_pairs_close(run_both(cuda_backend, "dense_backward", rand(rng, n, u), out, x, weight,
                                "relu", unset(n, f), unset(u, f), unset(u)))


@pytest.mark.parametrize("target_blocks,min_steps", [(64, 1), (3, 1)])
def test_split_k_partial_sums_add_up_to_the_full_product(cuda_backend, monkeypatch,
                                                         target_blocks, min_steps):
    monkeypatch.setattr(gemm_module, "TARGET_BLOCKS", target_blocks)
    monkeypatch.setattr(gemm_module, "MIN_SPLIT_STEPS", min_steps)
    n, f, u = 3, 5 * gemm_module.TILE_K + 3, 4                # 6 K steps in one output tile
    assert gemm_module.split_count(1, 6) > 1
    rng = np.random.default_rng(7)
    x, weight, bias = dense_case(rng, n, f, u)
    assert_pairs_close(run_both(cuda_backend, "dense_forward", x, weight, bias, "sigmoid",
                                unset(n, u)))
    # conv dweight sums over the batch inside the GEMM; split-K cuts across samples
    x = rand(rng, 3, 2, 4, 4)
    weight = rand(rng, 3, 2, 3, 3)
    cols = unset(3, 18, 16)
    reference.im2col(x, 3, 3, 1, 1, cols)
    assert_pairs_close(run_both(cuda_backend, "conv2d_backward", rand(rng, 3, 3, 4, 4), None,
                                weight, cols, 1, 1, None, None, unset(3, 2, 3, 3), unset(3),
                                None))


def test_gemm_plans_its_grid_from_the_problem_size():
    assert runtime.blocks_for(1) == 1
    assert runtime.blocks_for(10 * runtime.THREADS + 1) == 11
    assert gemm_module.split_count(10**6, 10**6) == 1          # enough tiles: no split-K


# ---- layers that need more than one block or thread per output ------------------------
def test_overlapping_max_pool_windows_add_their_gradients(cuda_backend):
    rng = np.random.default_rng(3)
    x = np.round(rand(rng, 1, 2, 5, 5))                       # many ties: first maximum wins
    pairs = run_both(cuda_backend, "maxpool2d_forward", x, 3, 2, unset(1, 2, 2, 2),
                     unset(1, 2, 2, 2, dtype=np.int32))
    assert_pairs_close(pairs, tol=0)
    argmax = pairs[2][0]
    assert_pairs_close(run_both(cuda_backend, "maxpool2d_backward", rand(rng, 1, 2, 2, 2), argmax,
                                unset(1, 2, 5, 5)))


def test_col2im_gathers_overlapping_windows(cuda_backend):
    rng = np.random.default_rng(4)
    assert_pairs_close(run_both(cuda_backend, "col2im", rand(rng, 2, 2 * 3 * 3, 9), 3, 3, 2, 1,
                                unset(2, 2, 5, 5)))


def test_loss_statistics_are_reduced_on_the_device(cuda_backend):
    rng = np.random.default_rng(5)
    logits = rand(rng, 5, 11)                                  # more classes than row threads
    labels = rng.integers(0, 11, 5).astype(np.int32)
    labels[:2] = logits[:2].argmax(axis=1)
    pairs = run_both(cuda_backend, "softmax_cross_entropy", logits, labels, unset(5, 11),
                     unset(2))
    assert_pairs_close(pairs)
    assert pairs[-1][1][1] >= 2
    assert_pairs_close(run_both(cuda_backend, "mse_loss", logits, rand(rng, 5, 11),
                                unset(5, 11), unset(2)))


@pytest.mark.parametrize("seed", [0, 123456789, 2**64 - 1])
def test_dropout_mask_is_the_contract_hash_bit_for_bit(cuda_backend, seed):
    rng = np.random.default_rng(6)
    x = rand(rng, 3, 41)
    pairs = run_both(cuda_backend, "dropout_forward", x, 0.4, seed, unset(3, 41), unset(3, 41))
    for expected, actual in pairs:
        np.testing.assert_array_equal(actual, expected)
    keep = contract.dropout_uniform(seed, x.size).reshape(x.shape) >= 0.4
    np.testing.assert_array_equal(pairs[-1][1] > 0, keep)


# ---- memory: device arrays stay on the device -------------------------------------------
def test_zeros_fills_on_the_device_for_every_dtype(cuda_backend):
    for dtype in (np.float32, np.int32):
        array = cuda_backend.zeros((3, runtime.THREADS + 5), dtype)
        assert not isinstance(array, np.ndarray)
        host = cuda_backend.to_host(array)
        assert host.dtype == dtype and not host.any()


def _training_step(backend, arrays):
    """conv(relu) -> maxpool -> dense -> cross-entropy -> backward -> Adam, on device arrays."""
    a = arrays
    backend.conv2d_forward(a["x"], a["cw"], a["cb"], 1, 1, "relu", a["cols"], a["conv"])
    backend.maxpool2d_forward(a["conv"], 2, 2, a["pool"], a["argmax"])
    flat_pool = a["pool"].reshape(a["pool"].shape[0], -1)
    backend.dense_forward(flat_pool, a["dw"], a["db"], None, a["logits"])
    backend.softmax_cross_entropy(a["logits"], a["labels"], a["dlogits"], a["stats"])
    backend.dense_backward(a["dlogits"], a["logits"], flat_pool, a["dw"], None,
                           a["dpool"].reshape(flat_pool.shape), a["gdw"], a["gdb"])
    backend.maxpool2d_backward(a["dpool"], a["argmax"], a["dconv"])
    backend.conv2d_backward(a["dconv"], a["conv"], a["cw"], a["cols"], 1, 1, "relu",
                            None, a["gcw"], a["gcb"], None)
    for name in ("cw", "cb", "dw", "db"):
        backend.adam_update(a[name], a["g" + name], a["m" + name], a["v" + name],
                            1e-3, 0.9, 0.999, 1e-8, 1)


def _step_arrays(backend):
    rng = np.random.default_rng(8)
    shapes = {"x": (2, 1, 4, 4), "cw": (2, 1, 3, 3), "cb": (2,), "cols": (2, 9, 16),
              "conv": (2, 2, 4, 4), "pool": (2, 2, 2, 2), "dw": (3, 8), "db": (3,),
              "logits": (2, 3), "dlogits": (2, 3), "stats": (2,), "dpool": (2, 2, 2, 2),
              "dconv": (2, 2, 4, 4)}
    arrays = {name: backend.to_device(rand(rng, *shape)) for name, shape in shapes.items()}
    arrays["argmax"] = backend.empty((2, 2, 2, 2), np.int32)
    arrays["labels"] = backend.to_device(np.array([0, 2], np.int32))
    for name in ("cw", "cb", "dw", "db"):
        for prefix in ("g", "m", "v"):
            arrays[prefix + name] = backend.zeros(shapes[name])
    return arrays


def test_a_training_step_never_copies_to_the_host_nor_allocates(cuda_backend, monkeypatch):
    from numba import cuda

    arrays = _step_arrays(cuda_backend)
    _training_step(cuda_backend, arrays)                      # warm-up fills the workspaces
    allocations = []

    def forbidden(*args, **kwargs):
        raise AssertionError("host round trip inside a kernel call")

    def counting(*args, **kwargs):
        allocations.append(args)
        return original(*args, **kwargs)

    original = cuda.device_array
    array_type = type(arrays["x"])
    monkeypatch.setattr(cuda, "device_array", counting)
    monkeypatch.setattr(cuda, "to_device", forbidden)
    monkeypatch.setattr(array_type, "copy_to_host", forbidden)
    _training_step(cuda_backend, arrays)
    monkeypatch.undo()
    assert allocations == []
    for value in arrays.values():
        assert isinstance(value, array_type) and not isinstance(value, np.ndarray)
    stats = cuda_backend.to_host(arrays["stats"])
    assert np.isfinite(stats[0]) and stats[1] in (0, 1, 2)


# ---- choosing the backend ---------------------------------------------------------------
def _run_python(code, **env_changes):
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_ENABLE_CUDASIM", "FASTCNN_BACKEND")}
    env.update(env_changes)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.skipif(Path("/dev/nvidia0").exists(), reason="this machine has an NVIDIA GPU")
def test_without_a_gpu_choosing_cuda_says_why_and_what_to_use_instead():
    output = _run_python(
        "import json, fastcnn\n"
        "try:\n"
        "    fastcnn.set_backend('cuda')\n"
        "    error = None\n"
        "except fastcnn.BackendError as exc:\n"
        "    error = str(exc)\n"
        "status = {s.name: [s.available, s.reason] for s in fastcnn.available_backends()}\n"
        "print(json.dumps({'error': error, 'cuda': status['cuda']}))\n")
    result = json.loads(output.strip().splitlines()[-1])
    assert result["error"] is not None, "set_backend('cuda') worked without a GPU"
    assert "no CUDA GPU is usable: " in result["error"]
    reason = result["error"].split("no CUDA GPU is usable: ", 1)[1]
    assert reason and not reason.startswith(";"), "numba's reason is missing"
    assert "--backend numba" in result["error"]
    available, why = result["cuda"]
    assert available is False and "no CUDA GPU is usable" in why


def test_without_numba_cuda_the_error_names_the_extra_to_install():
    output = _run_python(
        "import sys\n"
        "sys.modules['numba_cuda'] = None\n"
        "try:\n"
        "    import fastcnn.kernels.cuda_backend\n"
        "except ImportError as exc:\n"
        "    print(exc)\n")
    assert "pip install fastcnn[cuda]" in output


def test_auto_never_picks_the_simulator(cuda_backend):
    if not cuda_backend.SIMULATED:
        pytest.skip("a real GPU: auto may pick cuda")
    with fastcnn.use_backend("auto") as name:
        assert name != "cuda"


# ---- the GPU check script stays runnable ----------------------------------------------------
def test_gpu_check_script_smoke_run_passes(cuda_backend, capsys, monkeypatch):
    spec = importlib.util.spec_from_file_location("gpu_check", REPO / "benchmarks" / "gpu_check.py")
    gpu_check = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "gpu_check", gpu_check)   # its dataclasses look it up
    spec.loader.exec_module(gpu_check)
    assert gpu_check.main(["--smoke"]) == 0
    output = capsys.readouterr().out
    assert "conformance at the model's shapes: ok" in output and "samples/s" in output

"""Reports of a benchmark document: console tables, Markdown (benchmarks/RESULTS.md), JSON,
and the bar chart."""

from __future__ import annotations

import json
import os

from ..fileio import atomic_write
from .environment import describe_blas, describe_gemm
from .runner import NAIVE, TORCH

KINDS = (("train", "Training steps"), ("infer", "Inference"), ("kernel", "Kernels"))
HEADERS = ("benchmark", "backend", "batch", "time/batch", "samples/s", "vs naive", "vs torch",
           "GFLOP/s", "% peak", "CPU/wall")

TARGETS = {("infer", "numba", TORCH): 3.0, ("train", "numba", NAIVE): 1000.0,
           ("train", "cython", "numba"): 1 / 1.5, ("train", "numba", TORCH): 1.2,
           ("train", "cython", TORCH): 1.0}
"""(kind, backend, baseline) -> the throughput ratio the issues ask for (issue 9: numba
inference >= 3x PyTorch, every zoo model trains >= 1.2x PyTorch on numba and no slower
than PyTorch on cython, pytorch_cnn itself >= 1.5x on numba and >= 1.3x on cython, see
MODEL_TARGETS; issue 3: training step >= 1000x the naive loops; issue 4: cython within 1.5x
of numba's training throughput)."""

MODEL_TARGETS = {("train", "pytorch_cnn", "numba", TORCH): 1.5,
                 ("train", "pytorch_cnn", "cython", TORCH): 1.3}
"""Targets for one model, overriding TARGETS (issue 9)."""


def target(kind: str, name: str, backend: str, baseline: str) -> float | None:
    """The ratio the issues ask of ``backend`` against ``baseline`` for this benchmark, or None."""
    return MODEL_TARGETS.get((kind, name, backend, baseline), TARGETS.get((kind, backend, baseline)))


# ---- formatting ------------------------------------------------------------------------
def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds * 1e9:.3g} ns"


def format_ratio(ratio: float | None) -> str:
    if ratio is None:
        return "-"
    if ratio >= 100:
        return f"{ratio:,.0f}x"
    return f"{ratio:.2f}x" if ratio >= 1 else f"{ratio:.2g}x"


def format_number(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if value >= 10 ** digits else f"{value:.{digits}g}"


def format_share(share: float | None) -> str:
    return "-" if share is None else f"{share * 100:.1f}%"


def render(headers, rows, markdown: bool = False) -> str:
    """A table: Markdown pipes, or space-aligned columns for the console."""
    rows = [[str(cell) for cell in row] for row in rows]
    if markdown:
        lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])
    widths = [max(len(str(h)), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]
    line = "  ".join(f"{h:<{w}}" if i < 2 else f"{h:>{w}}" for i, (h, w) in enumerate(zip(headers, widths)))
    body = ["  ".join(f"{c:<{w}}" if i < 2 else f"{c:>{w}}" for i, (c, w) in enumerate(zip(row, widths)))
            for row in rows]
    return "\n".join([line, "-" * len(line)] + body)


def result_cells(row: dict) -> list:
    return [row["name"], row["backend"], "-" if row["batch"] is None else row["batch"],
            format_seconds(row["seconds"]), format_number(row["samples_per_s"]),
            format_ratio(row["speedup_vs_naive"]), format_ratio(row["vs_torch"]),
            format_number(row["gflops"]), format_share(row.get("peak_share")),
            "-" if row.get("cpu_per_wall") is None else f"{row['cpu_per_wall']:.2f}"]


def results_table(rows: list[dict], kind: str, markdown: bool = False) -> str:
    return render(HEADERS, [result_cells(row) for row in rows if row["kind"] == kind], markdown)


def console_report(document: dict) -> str:
    parts = []
    for kind, title in KINDS:
        if any(row["kind"] == kind for row in document["rows"]):
            parts.append(f"\n{title}\n" + results_table(document["rows"], kind))
    parts.append(f"\nmatmul peak: {document['peak']['gflops']:.1f} GFLOP/s "
                 f"(NumPy float32 {document['peak']['size']}^3, {document['threads']} threads)")
    parts.append(_steal_line(document))
    if TORCH not in document["competitors"]:
        parts.append(_no_torch_line(document))
    if "felt" in document:
        from .felt import felt_table

        parts.append("\nWhat users feel\n" + felt_table(document["felt"]))
    return "\n".join(parts)


def _no_torch_line(document: dict) -> str:
    """Why the "vs torch" column holds only dashes."""
    if document.get("versions", {}).get("torch") is None:
        return ('vs torch: "-" because PyTorch is not installed here (pip install '
                '"fastcnn[torch]" adds the CPU build the tests compare against)')
    return 'vs torch: "-" because torch was not among --backends'


def _steal_line(document: dict) -> str:
    """How much CPU time a hypervisor took from this machine during the run (Linux VMs)."""
    share = document["machine"].get("steal_share")
    if share is None:
        return "host steal time: not reported here"
    return (f"host steal time: {share:.1%} of this machine's CPU time during the run (another "
            "guest of the hypervisor ran instead; CPU/wall falls with it)")


# ---- headline figures ----------------------------------------------------------------
def find(document: dict, kind: str, name: str, backend: str) -> dict | None:
    for row in document["rows"]:
        if (row["kind"], row["name"], row["backend"]) == (kind, name, backend) and \
                not row.get("extra_batch"):
            return row
    return None


def _ratio(document, kind, name, backend, other) -> float | None:
    row = find(document, kind, name, backend)
    return None if row is None else row["speedup_vs"].get(other)


def _verdict(value, target) -> str:
    if value is None:
        return "not measured"
    return "met" if value >= target else "NOT met"


def _process_ratio(document, kind, name, backend, baseline) -> dict | None:
    for entry in document.get("processes", {}).get("ratios", []):
        if (entry["kind"], entry["name"], entry["backend"], entry["baseline"]) == (kind, name, backend,
                                                                                   baseline):
            return entry
    return None


def _best_ratio(document, kind, name, backend, baseline) -> str:
    """The fresh-process median with its range where measured, else the in-process ratio."""
    entry = _process_ratio(document, kind, name, backend, baseline)
    wanted = target(kind, name, backend, baseline)
    if entry is not None:
        text = f"{format_ratio(entry['median'])} ({format_ratio(entry['min'])}-{format_ratio(entry['max'])})"
        return text + (f" {_verdict(entry['median'], wanted)}" if wanted else "")
    ratio = _ratio(document, kind, name, backend, baseline)
    if ratio is None:
        return "-"
    return format_ratio(ratio) + (f" {_verdict(ratio, wanted)}" if wanted else "")


def headline_models(document: dict, fast: str = "numba") -> str:
    """Per zoo model: the fast backend against PyTorch, the naive loops and cython."""
    headers = ["model", f"train {fast}/torch (target >= 1.2x; pytorch_cnn 1.5x)",
               "train cython/torch (target >= 1x; pytorch_cnn 1.3x)",
               f"infer {fast}/torch (target >= 3x)",
               f"train {fast} vs naive (target >= 1000x)", "train cython/numba (target >= 0.67x)",
               f"{fast} train samples/s", "torch train samples/s", f"{fast} train GFLOP/s (% peak)",
               f"{fast} train CPU/wall"]
    rows = []
    for name in document["models"]:
        train = find(document, "train", name, fast)
        torch_train = find(document, "train", name, TORCH)
        if train is None:
            continue
        rows.append([
            name, _best_ratio(document, "train", name, fast, TORCH),
            _best_ratio(document, "train", name, "cython", TORCH) if fast != "cython" else "-",
            _best_ratio(document, "infer", name, fast, TORCH),
            _best_ratio(document, "train", name, fast, NAIVE),
            _best_ratio(document, "train", name, "cython", "numba") if fast == "numba" else "-",
            format_number(train["samples_per_s"]),
            format_number(torch_train["samples_per_s"]) if torch_train else "-",
            f"{format_number(train['gflops'])} ({format_share(train.get('peak_share'))})",
            "-" if train.get("cpu_per_wall") is None else f"{train['cpu_per_wall']:.2f}",
        ])
    return render(headers, rows, markdown=True)


def processes_table(processes: dict) -> str:
    rows = []
    for entry in processes["ratios"]:
        wanted = target(entry["kind"], entry["name"], entry["backend"], entry["baseline"])
        what = "training step" if entry["kind"] == "train" else "inference"
        rows.append([f"{entry['name']} {what}: {entry['backend']} / {entry['baseline']}",
                     format_ratio(entry["median"]), format_ratio(entry["min"]),
                     format_ratio(entry["max"]),
                     f">= {format_ratio(wanted)}: {_verdict(entry['median'], wanted)}" if wanted else "-"])
    return render(["figure", "median", "min", "max", "target"], rows, markdown=True)


def startup_table(startup: dict) -> str:
    headers = ["framework", "import -> first step done", "first step", "later steps (median)",
               "RSS after imports", "peak RSS training", "training memory (peak - after imports)"]
    rows = []
    compile_run = startup.get("compile")
    entries = ([("numba, first-ever run (empty NUMBA_CACHE_DIR)", compile_run)] if compile_run else [])
    entries += [(f"{name}{', cached' if name == 'numba' else ''}", run)
                for name, run in startup.get("cached", {}).items()]
    for label, run in entries:
        if "error" in run:
            rows.append([label, run["error"]] + ["-"] * 5)
            continue
        rows.append([label + (f" ({run['warning']})" if run.get("warning") else ""),
                     format_seconds(run["ready_s"]), format_seconds(run["first_step_s"]),
                     format_seconds(run["step_s"]), f"{run['baseline_mib']:.0f} MiB",
                     f"{run['peak_mib']:.0f} MiB", f"{run['training_mib']:.0f} MiB"])
    return render(headers, rows, markdown=True)


def breakdown_tables(breakdown: dict) -> str:
    sides = list(breakdown["step_ms"])
    headers = ["category"] + [f"{side} ms (share)" for side in sides]
    rows = [[row["category"]] + [f"{row[f'{side}_ms']:.2f} ({format_share(row[f'{side}_share'])})"
                                 for side in sides]
            for row in breakdown["categories"]
            if any(row[f"{side}_share"] > 0.0005 for side in sides)]
    rows.append(["**step (median, uninstrumented)**"] + [f"{breakdown['step_ms'][side]:.2f}" for side in sides])
    backend = breakdown["backend"]
    kernel_rows = [[entry["op"], "x".join(map(str, entry["input_shape"])),
                    f"{entry['ms_per_step']:.3f}", format_share(entry["share"])]
                   for entry in breakdown["kernels"] if entry["share"] > 0.001]
    return (render(headers, rows, markdown=True) + f"\n\n{backend} kernels, largest first "
            "(first input's shape tells the layer; shares of the instrumented step):\n\n"
            + render(["kernel", "first input", "ms/step", "share"], kernel_rows, markdown=True))


# ---- Markdown document -----------------------------------------------------------------
def markdown_report(document: dict) -> str:
    machine, versions = document["machine"], document["versions"]
    peak = document["peak"]
    fast = "numba" if "numba" in document["competitors"] else next(
        (name for name in document["competitors"] if name not in (NAIVE, TORCH, "numpy")), "numpy")
    parts = [
        "# fastcnn benchmark results", "",
        f"Generated by `{document.get('command', 'fastcnn bench')}` on {machine['date']} "
        f"in {document['seconds'] / 60:.1f} minutes.", "",
        f"- **Machine:** {machine['cpu']}, {machine['cores']} cores available to the process "
        f"({machine['platform']}); no GPU" + ("" if "cuda" in document["competitors"] else
                                              " was used (the CUDA backend is not measured here)") + ".",
        f"- **ISA:** {' '.join(machine.get('isa') or []) or 'unknown'}.",
        f"- **BLAS:** {describe_blas(document.get('blas', []), machine.get('openblas_coretype'))}, "
        "as NumPy has it for the numpy "
        "backend and PyTorch-free code; the numba and cython kernels call SciPy's BLAS on one "
        "thread from each of their own threads.",
        f"- **float32 GEMMs:** {describe_gemm(document.get('own_gemm', {}))} (numba's micro-kernel "
        "has an AVX-512 and an AVX2 tile, cython's an AVX-512 one; elsewhere BLAS multiplies; "
        "the matmul peak below is NumPy's BLAS).",
        f"- **Load:** 1-minute load average {machine.get('load_average', '?')} at the start, "
        f"{machine.get('load_average_end', '?')} at the end: other processes shared the "
        f"{machine['cores']} cores, which is why every figure is a side-by-side ratio or a median; "
        + _steal_line(document) + ".",
        "- **Versions:** " + ", ".join(f"{name} {version or 'not installed'}"
                                       for name, version in versions.items()) + ".",
        f"- **Threads:** {document['threads']} for every competitor (fastcnn kernels, NumPy's "
        "BLAS, `torch.set_num_threads`).",
        f"- **Matmul peak:** {peak['gflops']:.1f} GFLOP/s median, {peak['best_gflops']:.1f} best "
        f"(NumPy float32 {peak['size']}x{peak['size']} @ {peak['size']}x{peak['size']}, same threads, "
        "same run): the \"% peak\" columns divide by the median.",
        f"- **Competitors:** {', '.join(document['competitors'])}. Batch {document['batch_size']} "
        f"for training and kernels, {document['infer_batch_size']} for inference; the naive loops "
        f"run {document['naive_batch_size']} sample(s) per call and are compared per sample.",
        "",
    ]
    if any(row["backend"] == fast for row in document["rows"]) and fast != "numpy":
        where = (f"the median (and range) over {document['processes']['count']} fresh processes "
                 "holding only numba, cython and PyTorch, each timing them round-robin; ratios to "
                 "the naive loops" if "processes" in document else "ratios")
        parts += [f"## Headline: {fast} against PyTorch and the naive loops", "",
                  f"Throughput ratios (samples/s): {where} are the median of per-round ratios "
                  "measured side by side in the main process (tables below).", "",
                  headline_models(document, fast), ""]
    if "processes" in document:
        count = document["processes"]["count"]
        parts += [f"### Ratios in {count} fresh processes", "",
                  processes_table(document["processes"]), "",
                  f"Training batch {document['batch_size']}, inference batch "
                  f"{document['infer_batch_size']}; each process times its competitors "
                  "round-robin. The main process (tables below) ran the same groups beside the "
                  "numpy backend and the naive loops, and after them the kernels.", ""]
    if "felt" in document:
        from .felt import felt_table

        parts += ["## What users feel: whole fit() epochs, busy neighbours, the first run", "",
                  felt_table(document["felt"]), ""]
    if "startup" in document:
        parts += ["## Start-up, compile time and memory (pytorch_cnn, batch "
                  f"{document['batch_size']})", "", startup_table(document["startup"]), "",
                  "Each row is a fresh subprocess (cached rows: median of 3, interleaved). "
                  "*Import -> first step done* runs from `import fastcnn` (or `import torch`) to "
                  "the end of the first training step; the first-ever numba run compiles every "
                  "kernel into an empty `NUMBA_CACHE_DIR`, the cached run loads them from it. "
                  "*Training memory* is the peak resident set while training (the kernel's "
                  "VmHWM counter, reset after two warm-up steps through `/proc/self/clear_refs`) "
                  "minus the resident set right after the imports, so it counts weights, "
                  "gradients, optimizer state, activations, workspaces and compiled code, not "
                  "the libraries themselves.", ""]
    if "breakdown" in document:
        b = document["breakdown"]
        parts += [f"## Where the time goes: one {b['model']} training step, batch {b['batch']}", "",
                  breakdown_tables(b), "",
                  "fastcnn: each backend kernel timed by a wrapper; PyTorch: `torch.profiler` "
                  "top-level CPU events. Shares of an instrumented step, applied to the "
                  "uninstrumented median step time. fastcnn fuses ReLU into the conv/dense "
                  "kernels and softmax into the loss; PyTorch runs them separately.", ""]
    for kind, title in KINDS:
        if any(row["kind"] == kind for row in document["rows"]):
            parts += [f"## {title}", "", results_table(document["rows"], kind, markdown=True), ""]
    parts += [
        "## Method", "",
        "- Before anything is timed, every competitor's result is compared with the NumPy "
        "reference backend on the same inputs (PyTorch with identical weights; for a training "
        "step the loss and every weight gradient, with fastcnn's dropout masks in PyTorch for "
        "that one step). A mismatch stops the run.",
        "- Timing: a warm-up call (the check), a calibration so that one timed sample lasts "
        f"at least {document['min_time'] * 1e3:.0f} ms, then up to {document['repeat']} rounds "
        f"(fewer, but at least 3, once a benchmark has been timed for {document.get('budget') or 0:.0f} s; "
        "the naive loops take part in the first "
        f"{document.get('naive_repeat', 1)} only) in which "
        "every competitor is timed once, in an order rotated each round; medians are reported "
        "and every ratio is the median of per-round ratios, so that load from other processes "
        "affects both sides of a ratio alike (bench.json keeps every round's seconds per call "
        "under `samples`). Ratios still move with the load: in our runs the compiled backends "
        "(a dozen or more short parallel kernels per training step, each waiting for its "
        "slowest thread) lost more than PyTorch whenever other processes were busy. "
        "All competitors share one process, and `import fastcnn` sets `GOMP_SPINCOUNT=300` "
        "and `KMP_BLOCKTIME=0` (unless one of those or `OMP_WAIT_POLICY` is set), so idle "
        "OpenMP threads of one competitor spin only a few microseconds while another runs.",
        "- CPU/wall: the process's CPU time (every thread) over the wall time of each timed "
        "round, median over the rounds: how many cores a competitor kept busy (other "
        "processes' load lowers it).",
        "- GFLOP/s counts the convolution and dense GEMMs only (2 per multiply-add; the "
        "backward pass counts the gradients the model really computes); pooling, activations, "
        "losses and optimizer updates count none.",
        "- CUDA: " + ("measured above." if "cuda" in document["competitors"] else
                      "this machine has no GPU, so there are no CUDA figures."),
        "",
    ]
    return "\n".join(parts)


# ---- files -------------------------------------------------------------------------------
def chart_rows(document: dict) -> list[dict]:
    return [row for row in document["rows"] if row["kind"] in ("train", "infer")]


def write_chart(document: dict, path: str) -> str:
    """The samples/s bar chart; fastcnn.plots.plot_benchmark where it exists."""
    title = f"fastcnn bench, {document['threads']} threads: samples/s per backend"
    try:
        from ..plots import plot_benchmark
    except ImportError:
        from .chart import plot_benchmark
    plot_benchmark(chart_rows(document), path, title=title)
    return path


def write_reports(document: dict, out_dir: str) -> dict:
    """bench.json, bench.md and bench.png in ``out_dir`` (no chart without a training or
    inference row: ``--models layers`` times kernels only); returns {kind: path}."""
    os.makedirs(out_dir, exist_ok=True)
    paths = {"json": os.path.join(out_dir, "bench.json"), "markdown": os.path.join(out_dir, "bench.md"),
             "chart": os.path.join(out_dir, "bench.png")}
    with atomic_write(paths["json"], "w") as f:
        json.dump(document, f, indent=1)
    with atomic_write(paths["markdown"], "w") as f:
        f.write(markdown_report(document))
    if chart_rows(document):
        write_chart(document, paths["chart"])
    else:
        del paths["chart"]
    return paths

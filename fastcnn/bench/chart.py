"""A minimal grouped bar chart of benchmark throughput (used when fastcnn.plots is absent)."""

from __future__ import annotations


def plot_benchmark(rows, path, title=None):
    """rows: dicts with "group", "backend", "samples_per_s"; one bar group per "group",
    one bar per backend, log-scaled samples/s. Writes a PNG to ``path``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    groups = list(dict.fromkeys(row["group"] for row in rows))
    backends = list(dict.fromkeys(row["backend"] for row in rows))
    width = 0.8 / max(1, len(backends))
    figure, axes = plt.subplots(figsize=(max(6, 1.6 * len(groups)), 4.5))
    for index, backend in enumerate(backends):
        values = {row["group"]: row["samples_per_s"] for row in rows if row["backend"] == backend}
        xs = [g + index * width for g, name in enumerate(groups) if values.get(name)]
        axes.bar(xs, [values[name] for name in groups if values.get(name)], width, label=backend)
    axes.set_xticks([g + width * (len(backends) - 1) / 2 for g in range(len(groups))])
    axes.set_xticklabels(groups, rotation=20, ha="right")
    axes.set_yscale("log")
    axes.set_ylabel("samples/s")
    if title:
        axes.set_title(title)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path

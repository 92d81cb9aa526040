"""Bar plot of the ablation: one PNG per data set, mean with sd error bars per row."""

from __future__ import annotations

from pathlib import Path

from mu2.bench.table import (
    COLUMNS,
    ROW_NAMES,
    SPLIT_TITLES,
    Tables,
    column_names,
    rows_present,
)

PLOT_METRICS: tuple[str, ...] = ("bleu1", "rouge1", "meteor", "bertscore", "green", "finding_f1")


def plot_ablation(t: Tables, out: Path) -> dict[str, Path]:
    """``ablation_<dataset>.png``: metrics on x, one bar per row, one panel per split."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = dict(zip(COLUMNS.values(), column_names(t.labels), strict=True))
    files: dict[str, Path] = {}
    for dataset in t.datasets:
        splits = [s for s in t.splits if rows_present(t, dataset, s)]
        if not splits:
            continue
        fig, axes = plt.subplots(len(splits), 1, figsize=(12, 3.8 * len(splits)), squeeze=False)
        for ax, split in zip(axes[:, 0], splits, strict=True):
            rows = rows_present(t, dataset, split)
            metrics = [m for m in PLOT_METRICS if m in t.cells[(dataset, split, rows[0])]]
            width = 0.8 / len(rows)
            for i, row in enumerate(rows):
                cells = t.cells[(dataset, split, row)]
                xs = [j + (i - (len(rows) - 1) / 2) * width for j in range(len(metrics))]
                means = [cells[m].mean for m in metrics]
                errs = [cells[m].sd or 0.0 for m in metrics]
                ax.bar(xs, means, width, yerr=errs, capsize=2, label=ROW_NAMES.get(row, row))
            ax.set_xticks(range(len(metrics)))
            ax.set_xticklabels([names.get(m, m) for m in metrics], fontsize=8)
            ax.set_ylim(0, 1)
            ax.set_ylabel("score (mean ± sd over seeds)")
            ax.set_title(f"{dataset} anatomy, {SPLIT_TITLES[split].split(' (')[0]}", fontsize=10)
            ax.grid(axis="y", alpha=0.3)
        axes[0, 0].legend(fontsize=7, ncol=4, loc="upper left")
        fig.tight_layout()
        path = out / f"ablation_{dataset}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        files[f"plot_{dataset}"] = path
    return files

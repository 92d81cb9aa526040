"""Loss-curve figure written next to the final model, from the metrics JSONL."""

from __future__ import annotations

from pathlib import Path

from mu2.engine.logging import read_metrics


def plot_loss_curve(metrics_path: str | Path, out_png: str | Path, *, key: str = "loss") -> Path:
    """Train (and val, when logged) ``key`` against optimizer step, saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")  # files only; no display on training machines
    import matplotlib.pyplot as plt

    rows = read_metrics(metrics_path)
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for split, style in (("train", "-"), ("val", "o-")):
        points = [(r["step"], r[key]) for r in rows if r.get("split") == split and key in r]
        if points:
            steps, values = zip(*points, strict=True)
            ax.plot(steps, values, style, label=f"{split} {key}", markersize=3)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel(key)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png)
    plt.close(fig)
    return out_png

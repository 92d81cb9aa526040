"""Per-finding visibility of a synthetic data set: CNR and size in voxels, from gt/*.json.

``mu2 data stats OUT`` prints the table that tells whether a preset is learnable: a kind
whose 10th-percentile CNR is below ~3 or whose lesions are a handful of voxels will be
missed by a tiny model (a small ViT3D probe showed both limits).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from mu2.errors import Mu2Error
from mu2.findings.catalogue import FINDING_KINDS

COLUMNS = (
    "kind",
    "n",
    "prevalence",
    "cnr_min",
    "cnr_p10",
    "cnr_median",
    "cnr_p90",
    "voxels_min",
    "voxels_p10",
    "voxels_median",
)


def finding_stats(out_dir: str | Path) -> tuple[int, list[dict[str, float | int | str]]]:
    """(number of cases, one row per finding kind present) from ``out_dir/gt``."""
    gt = sorted(Path(out_dir, "gt").glob("*.json"))
    if not gt:
        raise Mu2Error(
            "no ground truth files (gt/*.json)",
            path=str(out_dir),
            fix="pass the folder written by `mu2 data synth`",
        )
    cnr: dict[str, list[float]] = defaultdict(list)
    vox: dict[str, list[int]] = defaultdict(list)
    for p in gt:
        for f in json.loads(p.read_text())["findings"]:
            extra = f.get("extra", {})
            if extra.get("cnr") is not None:
                cnr[f["finding"]].append(float(extra["cnr"]))
            vox[f["finding"]].append(int(extra.get("size_voxels", 0)))
    rows = []
    for kind in FINDING_KINDS:
        if kind not in vox:
            continue
        c, v = np.array(cnr[kind] or [np.nan]), np.array(vox[kind])
        rows.append(
            {
                "kind": kind,
                "n": len(v),
                "prevalence": round(len(v) / len(gt), 3),
                "cnr_min": round(float(np.min(c)), 1),
                "cnr_p10": round(float(np.percentile(c, 10)), 1),
                "cnr_median": round(float(np.median(c)), 1),
                "cnr_p90": round(float(np.percentile(c, 90)), 1),
                "voxels_min": int(v.min()),
                "voxels_p10": int(np.percentile(v, 10)),
                "voxels_median": int(np.median(v)),
            }
        )
    return len(gt), rows


def markdown_table(rows: list[dict[str, float | int | str]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(str(r[c]) for c in COLUMNS) + " |" for r in rows]
    return "\n".join(lines)

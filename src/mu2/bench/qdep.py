"""Question dependence of each trained ablation model: does its heat map follow the question?

For every row x data set x seed, the model is asked the default question of each region
(chest, abdomen) about the same test scans, by the package's one measurement
(:func:`mu2.generate.question_dependence.question_dependence`, as ``mu2 diagnose
question-dependence`` and the demo): the Pearson r of the two heat maps (near 1: the
tokenizer ignores the question), the visual-token cosine across questions, and the share
of each region question's heat in that region's slices. The numbers go to
``<run>/question_dependence.json`` (``scores``: flat keys, as a metrics file has);
:mod:`mu2.bench.table_extra` tabulates them.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from mu2.bench.config import AblationConfig
from mu2.errors import Mu2Error

QDEP_FILE = "question_dependence.json"
QDEP_SPLIT = "test"
QDEP = "qdep"
"""Score-key prefix: ``qdep.heat_r.abdomen|chest``, ``qdep.token_cos.<pair>``,
``qdep.share_own.<region>`` (a region question's heat in its region),
``qdep.share_others.<region>`` (the other questions' heat there), ``qdep.band_share.<region>``
(the region's share of the body: chance)."""
SUMMARY_KEYS = {"heat_r": "heat_corr", "token_cos": "token_cos", "share_own": "share_own",
                "share_others": "share_others", "band_share": "band_share"}  # fmt: skip


def qdep_scores(summary: dict[str, Any]) -> dict[str, float]:
    """Flat ``qdep.*`` scores of a summary (a region pair named in sorted order, whatever
    order the split asked the regions in)."""
    out: dict[str, float] = {}
    for name, field in SUMMARY_KEYS.items():
        for key, value in summary[field].items():
            key = "|".join(sorted(key.split("|")))
            out[f"{QDEP}.{name}.{key}"] = float(value)
    return out


def qdep_done(cfg: AblationConfig, run_dir: Path, model_dir: Path) -> bool:
    """Whether ``run_dir`` holds the measurement of this model with this many scans
    (``question_dependence_scans`` is no budget knob: changing it re-measures)."""
    if cfg.question_dependence_scans == 0:
        return True
    path = run_dir / QDEP_FILE
    if not path.is_file():
        return False
    doc = json.loads(path.read_text())
    return bool(
        doc.get("limit") == cfg.question_dependence_scans and doc.get("model") == str(model_dir)
    )


def measure_question_dependence(
    cfg: AblationConfig, data: Path, run_dir: Path, model_dir: Path
) -> dict[str, Any]:
    """Measure on the first ``question_dependence_scans`` test scans asked about two
    regions; write and return the record (a ``note`` instead of numbers when the model
    or the split gives none, e.g. no scan with two region questions)."""
    from mu2.generate.question_dependence import question_dependence, split_scans
    from mu2.model import Mu2ForConditionalGeneration

    doc: dict[str, Any] = {
        "model": str(model_dir), "split": QDEP_SPLIT, "limit": cfg.question_dependence_scans,
    }  # fmt: skip
    net = Mu2ForConditionalGeneration.from_pretrained(model_dir).eval()
    try:
        scans = split_scans(data, QDEP_SPLIT)
        result = question_dependence(net, net.processor, scans, cfg.question_dependence_scans)
    except Mu2Error as err:
        doc["note"] = f"not measured: {err}"
    else:
        doc["summary"] = result.summary()
        doc["scores"] = qdep_scores(doc["summary"])  # the table's cells, as in metrics files
        doc["scans"] = [dataclasses.asdict(s) for s in result.scans]
    path = run_dir / QDEP_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    tmp.replace(path)
    return doc

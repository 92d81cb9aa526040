"""The synthetic data set on disk: volumes, ground truth, report rows, seeded splits.

Layout of OUT::

    images/<case>.nii.gz     int16 HU, RAS
    labels/<case>.nii.gz     organ label map (with ``save_labels``)
    gt/<case>.json           structured ground truth: every finding with CNR and size
    train.jsonl val.jsonl test.jsonl   unified rows (see mu2.data.schema)
    test_generalisation.jsonl          cases with a held-out finding pair (optional)
    manifest.json            config, counts, label names

Cases are generated in worker processes, each from its own (seed, index) generator, so
the output is byte-identical for a seed whatever the number of workers.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import random
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from tqdm import tqdm

from mu2.data.schema import Record, write_jsonl
from mu2.data.synthetic.anatomy import LABEL_NAMES
from mu2.data.synthetic.case import Case, make_case
from mu2.data.synthetic.synth_config import DEFAULT_VQA_TYPES, SynthConfig, config_dict
from mu2.errors import Mu2Error
from mu2.findings.questions import PRESENCE, balanced_pick, typed_questions
from mu2.findings.writer import write_question, write_report

log = logging.getLogger(__name__)

SPLITS: tuple[str, ...] = ("train", "val", "test")
GENERALISATION_SPLIT = "test_generalisation"
DATASET_NAME = "synth"
MANIFEST = "manifest.json"
LABELS_DIR = "labels"


def label_map_path(root: str | Path, case_id: str) -> Path:
    """Where the label map of ``case_id`` is written (``save_labels``) and read from."""
    return Path(root) / LABELS_DIR / f"{case_id}.nii.gz"


@dataclass
class CaseRows:
    """What a worker hands back for one case: its rows and the kinds it holds."""

    case_id: str
    kinds: frozenset[str]
    rows: list[dict[str, Any]]
    findings: list[dict[str, Any]]


def save_nifti(array: np.ndarray, affine: np.ndarray, path: Path) -> None:
    """Write NIfTI-1 with deterministic bytes (gzip without a timestamp)."""
    img = nib.Nifti1Image(array, affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    img.header.set_xyzt_units("mm", "sec")
    data = img.to_bytes()
    if path.name.endswith(".gz"):
        data = gzip.compress(data, compresslevel=1, mtime=0)
    path.write_bytes(data)


def case_rows(case: Case, cfg: SynthConfig, seed: int) -> list[Record]:
    """Report rows (one per region) and up to ``cfg.vqa_per_case`` short-answer rows.

    With ``vqa_types`` at its default (presence only) the rows are those this function
    always wrote. Other types draw from their own generator, so the report rows and the
    presence questions stay the same whichever types are enabled.
    """
    rng = random.Random(f"{seed}-{case.case_id}")  # str seeds are stable across runs
    typed = tuple(cfg.vqa_types) != DEFAULT_VQA_TYPES
    qrng = random.Random(f"{seed}-{case.case_id}-vqa")
    image = f"images/{case.case_id}.nii.gz"
    rows: list[Record] = []
    qa: list[tuple[str, str, str, str]] = []  # (region, question, answer, qtype)
    for region in case.regions:
        mine = [f for f in case.findings if f.region == region]
        rows.append(
            Record(
                id=f"{case.case_id}-{region}",
                case_id=case.case_id,
                image=image,
                question=write_question(region, rng),
                answer=write_report(mine, region, rng),
                findings=[f.to_dict() for f in mine],
                region=region,
                task="report",
                dataset=DATASET_NAME,
            )
        )
        # Always drawn (from rng), so later regions' reports do not depend on vqa_types.
        presence = typed_questions(mine, region, PRESENCE, rng, cfg.kinds)
        for qtype in cfg.vqa_types:
            pool = (
                presence
                if qtype == PRESENCE
                else typed_questions(mine, region, qtype, qrng, cfg.kinds)
            )
            qa += [(region, q, a, qtype) for q, a, _ in pool]
    if typed:
        keep = balanced_pick([t for *_, t in qa], cfg.vqa_per_case, qrng)
    else:
        keep = sorted(rng.sample(range(len(qa)), min(cfg.vqa_per_case, len(qa))))
    for j, i in enumerate(keep):
        region, q, a, qtype = qa[i]
        mine = [f for f in case.findings if f.region == region]
        rows.append(
            Record(
                id=f"{case.case_id}-vqa{j}",
                case_id=case.case_id,
                image=image,
                question=q,
                answer=a,
                findings=[f.to_dict() for f in mine],
                region=region,
                task="vqa",
                dataset=DATASET_NAME,
                qtype=qtype if typed else None,
            )
        )
    return rows


def _work(args: tuple[SynthConfig, int, int, str, bool]) -> CaseRows:
    cfg, seed, index, out, save_labels = args
    out_dir = Path(out)
    case = make_case(cfg, seed, index)
    save_nifti(case.volume, case.affine, out_dir / "images" / f"{case.case_id}.nii.gz")
    if save_labels and case.labels is not None:
        save_nifti(case.labels, case.affine, label_map_path(out_dir, case.case_id))
    findings = [f.to_dict() for f in case.findings]
    gt = {
        "case_id": case.case_id,
        "image": f"images/{case.case_id}.nii.gz",
        "regions": list(case.regions),
        **case.info,
        "findings": findings,
    }
    (out_dir / "gt" / f"{case.case_id}.json").write_text(json.dumps(gt, indent=1) + "\n")
    rows = [r.to_dict() for r in case_rows(case, cfg, seed)]
    return CaseRows(case.case_id, frozenset(f.finding for f in case.findings), rows, findings)


def assign_splits(
    cases: list[CaseRows],
    shares: tuple[float, float, float],
    combos: list[frozenset[str]],
    seed: int,
) -> dict[str, list[int]]:
    """Case indices per split: held-out combinations first, the rest shuffled by ``seed``."""
    held = [i for i, c in enumerate(cases) if any(combo <= c.kinds for combo in combos)]
    held_set = set(held)
    rest = [i for i in range(len(cases)) if i not in held_set]
    order = np.random.default_rng(np.random.SeedSequence([seed, 0x5B117])).permutation(len(rest))
    rest = [rest[i] for i in order]
    n = len(rest)
    n_val = round(shares[1] * n)
    n_test = round(shares[2] * n)
    if n >= 3:  # every non-empty share gets at least one case
        n_val = max(n_val, 1) if shares[1] > 0 else 0
        n_test = max(n_test, 1) if shares[2] > 0 else 0
    n_train = n - n_val - n_test
    out = {
        "train": sorted(rest[:n_train]),
        "val": sorted(rest[n_train : n_train + n_val]),
        "test": sorted(rest[n_train + n_val :]),
    }
    if combos:
        out[GENERALISATION_SPLIT] = sorted(held)
    return out


def prepare_output(out_dir: Path) -> None:
    """Make ``out_dir`` ready: new, empty, or an earlier synth output (whose files go)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise Mu2Error("output path exists and is not a folder", path=str(out_dir))
    if not out_dir.exists() or not any(out_dir.iterdir()):
        return
    if not (out_dir / MANIFEST).is_file():
        raise Mu2Error(
            "output folder is not empty and holds no earlier synthetic data set",
            path=str(out_dir),
            fix="choose a new or empty folder (an earlier `mu2 data synth` output is replaced)",
        )
    # An earlier run: remove exactly the files synth writes, so no stale case survives.
    for sub, pattern in (("images", "*.nii.gz"), (LABELS_DIR, "*.nii.gz"), ("gt", "*.json")):
        for f in (out_dir / sub).glob(pattern):
            f.unlink()
    for name in (*SPLITS, GENERALISATION_SPLIT):
        (out_dir / f"{name}.jsonl").unlink(missing_ok=True)
    (out_dir / MANIFEST).unlink()


def synthesize(
    out: str | Path,
    n: int,
    seed: int,
    cfg: SynthConfig,
    *,
    workers: int | None = None,
    progress: bool = True,
    save_labels: bool = False,
    preset: str = "",
    size: str = "",
) -> dict[str, Any]:
    """Generate ``n`` cases into ``out``; returns the manifest (also written as JSON)."""
    if n < 1:
        raise Mu2Error(f"--n must be >= 1, got {n}")
    out_dir = Path(out)
    prepare_output(out_dir)
    for sub in ("images", "gt") + (("labels",) if save_labels else ()):
        (out_dir / sub).mkdir(parents=True, exist_ok=True)
    workers = max(1, min(workers or os.cpu_count() or 1, n))
    jobs = [(cfg, seed, i, str(out_dir), save_labels) for i in range(n)]
    bar = tqdm(total=n, desc="synth", unit="case", disable=not progress)
    cases: list[CaseRows] = []
    if workers == 1:
        for job in jobs:
            cases.append(_work(job))
            bar.update()
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for c in pool.map(_work, jobs, chunksize=max(1, min(16, n // (4 * workers)))):
                cases.append(c)
                bar.update()
    bar.close()

    splits = assign_splits(cases, cfg.split, cfg.combos(), seed)
    counts: dict[str, dict[str, int]] = {}
    for name, idx in splits.items():
        rows = [row for i in idx for row in cases[i].rows]
        write_jsonl(rows, out_dir / f"{name}.jsonl")
        kinds = Counter(k for i in idx for k in cases[i].kinds)
        counts[name] = {"cases": len(idx), "rows": len(rows), **dict(sorted(kinds.items()))}
    manifest = {
        "dataset": DATASET_NAME,
        "n": n,
        "seed": seed,
        "preset": preset,
        "size": size,
        "splits": counts,
        "labels": {str(k): v for k, v in LABEL_NAMES.items()},
        "config": config_dict(cfg),
    }
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    log.info("wrote %d cases to %s", n, out_dir)
    return manifest

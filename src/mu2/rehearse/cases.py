"""Synthetic cases written in the raw on-disk formats of AMOS-MM and CT-RATE v1.

The volumes and reports come from ``mu2 data synth`` (HU NIfTI, one report per region);
they are then laid out exactly as the data sets ship, for ``mu2 data convert`` to read:

* AMOS-MM: ``dataset.json`` with ``training`` / ``validation`` lists of
  ``{"image": "imagesTr/<case>.nii.gz", "labels": {"report": {"findings": {region: text}},
  "qa": [...]}}``;
* CT-RATE v1: ``dataset/train/<a>/<a_b>/<a_b_1>.nii.gz`` holding raw stored values (HU
  minus the intercept, int16, no rescale in the header), the reports CSV and the metadata
  CSV with ``RescaleSlope`` / ``RescaleIntercept`` / spacing.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

RESCALE_SLOPE, RESCALE_INTERCEPT = 1.0, -1024.0  # CT-RATE v1's usual DICOM rescale


@dataclass
class RawData:
    amos_json: Path
    ct_rate_root: Path
    amos_val_images: list[Path]


def _synth_cases(out: Path, n: int, seed: int) -> dict[str, dict[str, Any]]:
    """``n`` synthetic cases: {case_id: {"image": Path, "reports": {region: text}, "qa": [...]}}."""
    from mu2.data.synthetic.synth import synthesize
    from mu2.data.synthetic.synth_config import make_config

    synthesize(out, n, seed, make_config("tiny", "tiny"), workers=1, progress=False,
               preset="tiny", size="tiny")  # fmt: skip
    cases: dict[str, dict[str, Any]] = defaultdict(lambda: {"reports": {}, "qa": []})
    for split in ("train", "val", "test"):
        path = out / f"{split}.jsonl"
        for line in path.read_text().splitlines() if path.is_file() else []:
            row = json.loads(line)
            case = cases[row["case_id"]]
            case["image"] = out / row["image"]
            if row.get("task") == "report":
                case["reports"][row["region"]] = row["answer"]
            else:
                case["qa"].append({"question": row["question"], "answer": row["answer"]})
    return {k: v for k, v in sorted(cases.items()) if v["reports"]}


def write_raw_data(root: Path, amos_train: int, amos_val: int, ct_rate: int, seed: int) -> RawData:
    """Synthesise and lay out the cases under ``root`` (raw/amos-mm, raw/ct-rate)."""
    need = amos_train + amos_val + ct_rate
    cases = list(_synth_cases(root / "synth", need, seed).items())
    if len(cases) < need:
        raise RuntimeError(f"synthesis gave {len(cases)} cases with reports, need {need}")
    amos = root / "amos-mm"
    lists: dict[str, list[dict[str, Any]]] = {"training": [], "validation": []}
    val_images = []
    for i, (cid, case) in enumerate(cases[: amos_train + amos_val]):
        split, folder = ("training", "imagesTr") if i < amos_train else ("validation", "imagesVa")
        image = amos / folder / f"amos_{cid}.nii.gz"
        image.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(case["image"], image)
        if split == "validation":
            val_images.append(image)
        lists[split].append({
            "image": f"{folder}/{image.name}",
            "labels": {"report": {"findings": case["reports"], "impression": ""},
                       "qa": case["qa"][:2]},
        })  # fmt: skip
    amos_json = amos / "dataset.json"
    amos_json.write_text(json.dumps(lists, indent=1))

    ct = root / "ct-rate"
    reports, metadata = [], []
    for j, (_, case) in enumerate(cases[amos_train + amos_val : need], start=1):
        name = f"train_{j}_a_1.nii.gz"
        path = ct / "dataset" / "train" / f"train_{j}" / f"train_{j}_a" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        img = nib.load(case["image"])
        hu = np.asanyarray(img.dataobj).astype(np.float32)  # (X, Y, Z) HU
        raw = np.round((hu - RESCALE_INTERCEPT) / RESCALE_SLOPE).astype(np.int16)  # stored
        out = nib.Nifti1Image(raw, img.affine)
        out.header.set_slope_inter(1.0, 0.0)  # v1: the rescale lives in the CSV only
        nib.save(out, path)
        zooms = img.header.get_zooms()
        text = " ".join(case["reports"].values())
        reports.append({"VolumeName": name, "ClinicalInformation_EN": "", "Technique_EN": "",
                        "Findings_EN": text, "Impressions_EN": "No acute findings."})  # fmt: skip
        metadata.append({
            "VolumeName": name, "Manufacturer": "synthetic",
            "XYSpacing": f"[{zooms[0]:.4f}, {zooms[1]:.4f}]", "ZSpacing": f"{zooms[2]:.4f}",
            "RescaleSlope": RESCALE_SLOPE, "RescaleIntercept": RESCALE_INTERCEPT,
        })  # fmt: skip
    _write_csv(ct / "dataset" / "radiology_text_reports" / "train_reports.csv", reports)
    _write_csv(ct / "dataset" / "metadata" / "train_metadata.csv", metadata)
    return RawData(amos_json=amos_json, ct_rate_root=ct, amos_val_images=val_images)


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

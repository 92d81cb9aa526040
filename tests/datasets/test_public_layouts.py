"""Every adapter on its data set's public download layout, then one SFT step on the rows.

Each layout is built here, tiny, from the real CT sample (tests/data/real-ct), with the file
names, folders and columns the releases use:

* AbdomenAtlas 3.0 Mini, as its download script leaves it: ``AbdomenAtlas3.0MiniWithMeta.csv``
  ("BDMAP ID", "narrative report", ...), ``TrainTestIDS/{IID,OOD}_{train,test}.csv``,
  ``image_only/BDMAP_*/ct.nii.gz``, ``mask_only/BDMAP_*/segmentations/*.nii.gz``;
* M3D-Cap: ``M3D_Cap_npy/M3D_Cap.json`` whose paths start with ``M3D_Cap_npy/`` (relative
  to the folder above the JSON, M3D's ``data_root``), arrays (1, 32, H, W) in [0, 1];
* AMOS-MM: ``report_generation_train_val.json`` and the VQA-only ``vqa_train_val.json``
  (``labels.qa`` items with A-D options), volumes in ``imagesTr/``;
* CT-RATE: ``dataset/{train,valid}_fixed/...`` volumes, per-split reports and metadata CSVs
  with the release's columns, sections that say "Not given.".
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from mu2.cli.main import main
from mu2.config import load_config
from mu2.data.check import check_dataset
from mu2.data.schema import read_jsonl
from mu2.engine.logging import read_metrics
from mu2.train.config import SFTConfig
from mu2.train.sft import run_sft

CT = "example_ct_sm.nii.gz"  # real abdomen CT, 122 x 101 x 30, HU


def _csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def _copy_ct(data_dir: Path, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(data_dir / "real-ct" / CT, dest)
    return dest


def _abdomenatlas(root: Path, data_dir: Path) -> None:
    header = ["BDMAP ID", "structured report", "narrative report", "fusion structured report",
              "fusion narrative report", "number of pancreatic lesion instances", "spacing"]  # fmt: skip
    rows = [
        ["BDMAP_00000001", "LIVER: no lesion.", "The liver is normal. No focal lesion.", "", "", "0",
         "(3.0, 3.0, 3.0)"],
        ["BDMAP_00000002", "PANCREAS: cyst.", "A 12 mm cyst in the pancreatic tail.", "", "", "1",
         "(3.0, 3.0, 3.0)"],
    ]  # fmt: skip
    _csv(root / "AbdomenAtlas3.0MiniWithMeta.csv", header, rows)
    for name in ("IID_train", "IID_test", "OOD_train", "OOD_test"):
        _csv(root / "TrainTestIDS" / f"{name}.csv", ["BDMAP ID"], [["BDMAP_00000001"]])
    for case in ("BDMAP_00000001", "BDMAP_00000002"):
        _copy_ct(data_dir, root / "image_only" / case / "ct.nii.gz")
        seg = root / "mask_only" / case / "segmentations" / "liver.nii.gz"
        seg.parent.mkdir(parents=True)
        shutil.copy(data_dir / "real-ct" / "example_seg.nii.gz", seg)


def _m3d_cap(root: Path, data_dir: Path) -> None:
    img = nib.load(str(data_dir / "real-ct" / CT))
    hu = torch.from_numpy(np.asarray(img.dataobj, dtype=np.float32))  # (X, Y, Z)
    unit = ((hu.clamp(-160, 240) + 160) / 400)[None, None]  # window, [0, 1]
    small = torch.nn.functional.interpolate(unit, size=(64, 64, 32), mode="trilinear")[0, 0]
    arr = small.permute(2, 1, 0)[None].numpy().astype(np.float32)  # (W, H, D) -> (1, D, H, W)
    items = {}
    for split, case, series, text in (
        ("train", "000006", "Axial_C__portal_venous_phase", "Hepatic cyst. Normal spleen."),
        ("validation", "000007", "Axial", "No acute abnormality."),
    ):
        folder = root / "M3D_Cap_npy" / "ct_case" / case
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / f"{series}.npy", arr)
        (folder / "text.txt").write_text(text + "\n")
        rel = f"M3D_Cap_npy/ct_case/{case}"
        items[split] = [{"image": f"{rel}/{series}.npy", "text": f"{rel}/text.txt"}]
    (root / "M3D_Cap_npy" / "M3D_Cap.json").write_text(json.dumps(items))


def _amos_mm(root: Path, data_dir: Path) -> None:
    _copy_ct(data_dir, root / "imagesTr" / "amos_0001.nii.gz")
    report = {
        "image": "imagesTr/amos_0001.nii.gz",
        "meta": {"spacing": [3.0, 3.0, 3.0]},
        "labels": {
            "report": {
                "findings": {
                    "chest": "",
                    "abdomen": "The liver is enlarged.",
                    "pelvis": "The bladder is normal.",
                },
                "impression": {"abdomen": ["Hepatomegaly."]},
            }
        },
    }
    (root / "report_generation_train_val.json").write_text(
        json.dumps({"training": [report], "validation": []})
    )
    qa = {
        "question": "Is the liver enlarged?",
        "options": {"A": "Yes", "B": "No", "C": "Cannot tell", "D": "Absent"},
        "answer": "A",
        "reasoning": "The report says so.",
    }
    vqa = {"image": "imagesTr/amos_0001.nii.gz", "labels": {"qa": [qa]}}
    (root / "vqa_train_val.json").write_text(json.dumps({"training": [vqa], "validation": []}))


def _ct_rate(root: Path, data_dir: Path) -> None:
    ds = root / "dataset"
    _copy_ct(data_dir, ds / "train_fixed" / "train_1" / "train_1_a" / "train_1_a_1.nii.gz")
    _copy_ct(data_dir, ds / "train_fixed" / "train_2" / "train_2_a" / "train_2_a_1.nii.gz")
    _copy_ct(data_dir, ds / "valid_fixed" / "valid_1" / "valid_1_a" / "valid_1_a_1.nii.gz")
    header = ["VolumeName", "ClinicalInformation_EN", "Technique_EN", "Findings_EN",
              "Impressions_EN"]  # fmt: skip
    reports = ds / "radiology_text_reports"
    _csv(reports / "train_reports.csv", header, [
        ["train_1_a_1.nii.gz", "Not given.", "Non-contrast.", "Small hiatal hernia.", "Not given."],
        ["train_2_a_1.nii.gz", "Cough.", "Non-contrast.", "Not given.", "Normal study."],
    ])  # fmt: skip
    _csv(reports / "validation_reports.csv", header, [
        ["valid_1_a_1.nii.gz", "Not given.", "Non-contrast.", "Bilateral effusion.", "Effusion."],
    ])  # fmt: skip
    meta_header = ["VolumeName", "Manufacturer", "SeriesDescription", "XYSpacing", "ZSpacing",
                   "RescaleIntercept", "RescaleSlope", "Rows", "Columns"]  # fmt: skip
    names = ["train_1_a_1.nii.gz", "train_2_a_1.nii.gz", "valid_1_a_1.nii.gz"]
    meta = [[n, "SIEMENS", "CHEST", "[3.0, 3.0]", "3.0", "-1024", "1", "512", "512"] for n in names]
    _csv(ds / "metadata" / "train_metadata.csv", meta_header, meta[:2])
    _csv(ds / "metadata" / "validation_metadata.csv", meta_header, meta[2:])
    _csv(ds / "multi_abnormality_labels" / "train_predicted_labels.csv",
         ["VolumeName", "Emphysema"], [[names[0], "0"], [names[1], "0"]])  # fmt: skip


LAYOUTS = {
    # format: (builder, IN relative to the layout root, expected (id, region, task, answer))
    "abdomenatlas": (_abdomenatlas, ".", [
        ("BDMAP_00000001", "abdomen", "report", "The liver is normal. No focal lesion."),
        ("BDMAP_00000002", "abdomen", "report", "A 12 mm cyst in the pancreatic tail."),
    ]),
    "m3d-cap": (_m3d_cap, "M3D_Cap_npy/M3D_Cap.json", [
        ("000006/Axial_C__portal_venous_phase", None, "report", "Hepatic cyst. Normal spleen."),
        ("000007/Axial", None, "report", "No acute abnormality."),
    ]),
    "amos-mm": (_amos_mm, "vqa_train_val.json", [
        ("amos_0001-qa0", None, "vqa", "A. Yes"),
    ]),
    "ct-rate": (_ct_rate, ".", [
        ("train_1_a_1", "chest", "report", "Small hiatal hernia."),
        ("valid_1_a_1", "chest", "report", "Bilateral effusion."),
    ]),
}  # fmt: skip


def _convert(tmp_path: Path, data_dir: Path, fmt: str, capsys) -> Path:
    build, rel, _ = LAYOUTS[fmt]
    root = tmp_path / "download"
    root.mkdir()
    build(root, data_dir)
    out = tmp_path / "rows" / "train.jsonl"
    with pytest.raises(SystemExit) as done:  # the documented one-line convert
        main(["data", "convert", "--format", fmt, str(root / rel), "--out", str(out)])
    assert done.value.code == 0, capsys.readouterr().err
    return out


@pytest.mark.parametrize("fmt", list(LAYOUTS))
def test_public_layout_converts_to_the_expected_rows(tmp_path, data_dir, fmt, capsys) -> None:
    out = _convert(tmp_path, data_dir, fmt, capsys)
    rows = sorted(read_jsonl(out), key=lambda r: r.id)
    assert [(r.id, r.region, r.task, r.answer) for r in rows] == LAYOUTS[fmt][2]
    assert all(r.dataset == fmt for r in rows)
    assert all((out.parent / r.image).resolve().is_file() for r in rows)
    assert check_dataset(out).ok


def test_amos_mm_report_json_gives_one_row_per_region_with_text(tmp_path, data_dir) -> None:
    from mu2.data.adapters import convert_amos_mm

    _amos_mm(tmp_path, data_dir)
    conv = convert_amos_mm(tmp_path / "report_generation_train_val.json", tmp_path / "o.jsonl")
    assert [(r.id, r.answer) for r in conv.records] == [
        ("amos_0001-abdomen", "The liver is enlarged."),
        ("amos_0001-pelvis", "The bladder is normal."),
    ]


def test_ct_rate_not_given_is_no_text(tmp_path, data_dir) -> None:
    from mu2.data.adapters import convert_ct_rate

    _ct_rate(tmp_path, data_dir)
    conv = convert_ct_rate(tmp_path / "dataset", tmp_path / "o.jsonl")
    by_id = {r.id: r for r in conv.records}
    assert "impression" not in by_id["train_1_a_1"].meta  # "Not given." is not an impression
    assert by_id["valid_1_a_1"].meta["impression"] == "Effusion."
    assert conv.skipped == ["train_2_a_1.nii.gz: empty findings"]
    assert all(r.meta["hu_already"] and r.meta["hu_check"] == "v2 layout" for r in conv.records)


@pytest.mark.parametrize("fmt", list(LAYOUTS))
def test_one_sft_step_on_the_converted_rows(tmp_path, data_dir, fmt, capsys) -> None:
    out = _convert(tmp_path, data_dir, fmt, capsys)
    cfg = load_config(SFTConfig, None, [
        f"data.train={out}", "data.val=null", f"output_dir={tmp_path / 'run'}", "max_steps=1",
        "batch_size=2", "device=cpu", "num_threads=1", "tensorboard=false",
        "num_sample_reports=0", "eval_every=0", "log_every=1", "data.augment=false",
        "model.overrides={num_selected: 16, num_queries: 8, svr_layers: 1, tta_layers: 1}",
    ])  # fmt: skip
    final = run_sft(cfg)
    (step,) = read_metrics(tmp_path / "run" / "metrics.jsonl", "train")
    assert step["step"] == 1 and np.isfinite(step["loss"]) and step["loss"] > 0
    assert (final / "model.safetensors").is_file()

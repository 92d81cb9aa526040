"""The synthetic data set on disk: determinism, splits, rows, ground truth, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from mu2.cli.main import main
from mu2.data.schema import read_jsonl, resolve_image
from mu2.data.synthetic.synth import synthesize
from mu2.data.synthetic.synth_config import make_config
from mu2.errors import Mu2Error
from mu2.findings.catalogue import FINDING_KINDS, ORGANS, Finding
from mu2.findings.extract import extract_findings

SPLITS = ("train", "val", "test")


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "s"
    synthesize(out, 12, 0, make_config(), workers=1, progress=False)
    return out


def test_same_seed_gives_identical_files_whatever_the_workers(small, tmp_path) -> None:
    again = tmp_path / "again"
    synthesize(again, 12, 0, make_config(), workers=2, progress=False)
    for name in ("train.jsonl", "val.jsonl", "test.jsonl", "manifest.json"):
        assert (small / name).read_bytes() == (again / name).read_bytes(), name
    for img in sorted((small / "images").iterdir())[:3]:
        assert img.read_bytes() == (again / "images" / img.name).read_bytes()
    other = tmp_path / "other"
    synthesize(other, 12, 1, make_config(), workers=1, progress=False)
    assert (small / "train.jsonl").read_bytes() != (other / "train.jsonl").read_bytes()


def test_splits_are_disjoint_by_case_and_follow_the_shares(small) -> None:
    cases = {s: {r.case_id for r in read_jsonl(small / f"{s}.jsonl")} for s in SPLITS}
    assert [len(cases[s]) for s in SPLITS] == [10, 1, 1]
    assert not (cases["train"] & cases["val"]) and not (cases["train"] & cases["test"])
    assert not (cases["val"] & cases["test"])


def test_rows_match_the_ground_truth_and_read_back(small) -> None:
    rows = [r for s in SPLITS for r in read_jsonl(small / f"{s}.jsonl")]
    by_case: dict[str, list] = {}
    for r in rows:
        by_case.setdefault(r.case_id, []).append(r)
    assert len(by_case) == 12
    for case, mine in by_case.items():
        gt = json.loads((small / "gt" / f"{case}.json").read_text())
        reports = [r for r in mine if r.task == "report"]
        assert [r.region for r in reports] == gt["regions"]
        assert sum(r.task == "vqa" for r in mine) <= make_config().vqa_per_case
        for r in mine:  # yes/no rows only ask about kinds the preset draws
            if r.task == "vqa":
                asked = [k for k in FINDING_KINDS.values() if k.label in r.question.lower()]
                assert asked and all(k.name in make_config().kinds for k in asked), r.question
        for r in mine:
            assert not Path(r.image).is_absolute()
            assert resolve_image(r, small / "train.jsonl").is_file()
            assert r.question.strip() and r.answer.strip()
        for r in reports:
            truth = [f for f in gt["findings"] if Finding.from_dict(f).region == r.region]
            assert r.findings == truth
            # every finding of the row is stated in its prose, and every organ is covered
            stated = {f.key() for f in extract_findings(r.answer, r.region)}
            assert {Finding.from_dict(f).key() for f in truth} <= stated
            assert len(ORGANS[r.region]) <= r.answer.count(".") + 1
        for f in gt["findings"]:
            assert f["extra"]["size_voxels"] > 0 and f["extra"]["cnr"] is not None


def test_volumes_are_int16_hu_in_ras_with_their_spacing(small) -> None:
    gt = json.loads(next((small / "gt").iterdir()).read_text())
    img = nib.load(small / gt["image"])
    assert img.get_data_dtype() == np.int16
    assert "".join(nib.aff2axcodes(img.affine)) == "RAS"
    assert list(img.shape) == gt["shape"]
    assert np.allclose(img.header.get_zooms(), gt["spacing"], atol=1e-3)
    assert img.shape[0] == img.shape[1] == 64 and 24 <= img.shape[2] <= 48


def test_holdout_combos_never_reach_train(tmp_path) -> None:
    cfg = make_config(overrides=["prevalence=0.6", "holdout_combos=[splenomegaly+ascites]"])
    synthesize(tmp_path, 16, 5, cfg, workers=1, progress=False)
    held = read_jsonl(tmp_path / "test_generalisation.jsonl")
    assert held, "with prevalence 0.6, some of 16 cases hold both kinds"
    for r in held:
        kinds = {
            f["finding"]
            for f in json.loads((tmp_path / "gt" / f"{r.case_id}.json").read_text())["findings"]
        }
        assert {"splenomegaly", "ascites"} <= kinds
    for s in SPLITS:
        for r in read_jsonl(tmp_path / f"{s}.jsonl"):
            gt = json.loads((tmp_path / "gt" / f"{r.case_id}.json").read_text())
            assert not {"splenomegaly", "ascites"} <= {f["finding"] for f in gt["findings"]}


def _cli(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as done:  # typer's standalone mode exits on success
        return int(done.code or 0)


def test_cli_synth_then_check_passes_and_catches_a_leak(tmp_path, capsys) -> None:
    out = tmp_path / "s"
    assert _cli(["data", "synth", "--out", str(out), "--n", "10", "--seed", "2", "--quiet"]) == 0
    assert "wrote 10 cases" in capsys.readouterr().out
    assert _cli(["data", "check", str(out / "train.jsonl"), "--quiet"]) == 0
    assert capsys.readouterr().out.startswith("OK: 3 file(s)")
    # leak one training case into val: caught by case id and by volume content
    first = (out / "train.jsonl").read_text().splitlines()[0]
    with open(out / "val.jsonl", "a") as f:
        f.write(first + "\n")
    assert _cli(["data", "check", str(out / "val.jsonl"), "--quiet"]) == 1
    text = capsys.readouterr().out
    assert "is in several splits: train, val" in text and "same volume content" in text


def test_cli_rejects_a_bad_preset_and_key(tmp_path, capsys) -> None:
    assert _cli(["data", "synth", "--out", str(tmp_path), "--n", "2", "--preset", "huge"]) == 2
    assert "unknown preset 'huge'" in capsys.readouterr().err
    assert (
        _cli(["data", "synth", "--out", str(tmp_path), "--n", "2", "--set", "prevalance=0.5"]) == 2
    )
    assert "did you mean 'prevalence'" in capsys.readouterr().err


def test_cli_config_file_and_label_maps(tmp_path, capsys) -> None:
    cfg = tmp_path / "normal.yaml"
    cfg.write_text("prevalence: 0.0\nvqa_per_case: 0\n")
    out = tmp_path / "s"
    argv = [
        "data",
        "synth",
        "--out",
        str(out),
        "--n",
        "4",
        "--config",
        str(cfg),
        "--save-labels",
        "--workers",
        "1",
        "--quiet",
    ]
    assert _cli(argv) == 0
    for gt in (out / "gt").iterdir():
        assert json.loads(gt.read_text())["findings"] == []
        case = gt.name.removesuffix(".json")
        labels = nib.load(out / "labels" / f"{case}.nii.gz")
        assert labels.shape == nib.load(out / "images" / f"{case}.nii.gz").shape
    rows = [r for s in SPLITS for r in read_jsonl(out / f"{s}.jsonl")]
    assert {r.task for r in rows} == {"report"}
    assert _cli(["data", "stats", str(out)]) == 0 and "4 cases" in capsys.readouterr().out


def test_rerun_replaces_an_earlier_output_and_refuses_foreign_folders(tmp_path) -> None:
    out = tmp_path / "s"
    synthesize(out, 4, 0, make_config(), workers=1, progress=False)
    synthesize(out, 2, 0, make_config(), workers=1, progress=False)
    assert len(list((out / "gt").iterdir())) == len(list((out / "images").iterdir())) == 2
    foreign = tmp_path / "home"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(Mu2Error, match="not empty and holds no earlier synthetic data set"):
        synthesize(foreign, 2, 0, make_config(), workers=1, progress=False)
    assert (foreign / "notes.txt").read_text() == "mine"

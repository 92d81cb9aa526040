"""`mu2 demo --fast` end to end in a temporary $MU2_HOME: every stage, every artefact, the
printed tables read from the metrics files, and a second run that reuses every stage."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from mu2.demo.summary import TABLE_COLUMNS, target_check

# The stages of the fast profile, in order (no ablation).
STAGES = ("data", "clip", "lm", "sft", "prefs", "dpo", "eval-sft", "eval-dpo", "save", "examples",
          "question-dependence")  # fmt: skip


def _run_demo(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MU2_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-m", "mu2.cli.main", "demo", "--fast", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.fixture(scope="module")
def demo_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    home = tmp_path_factory.mktemp("mu2home")
    first = _run_demo(home)
    assert first.returncode == 0, first.stderr[-3000:]
    second = _run_demo(home)
    assert second.returncode == 0, second.stderr[-3000:]
    return home, first.stdout, second.stdout


def _table_rows(text: str, first_cell: str, width: int | None = None) -> list[list[str]]:
    """Markdown table rows whose first cell is ``first_cell`` (and with ``width`` cells)."""
    rows = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == first_cell and width in (None, len(cells)):
            rows.append(cells)
    return rows


def test_every_artefact_exists(demo_runs: tuple[Path, str, str]) -> None:
    home, _, _ = demo_runs
    out = home / "demo" / "fast"
    for split in ("train", "val", "test"):
        assert (out / "data" / "synth" / f"{split}.jsonl").stat().st_size > 0
    assert (out / "clip" / "final" / "vision.safetensors").is_file()
    assert (out / "clip" / "final" / "probe.md").is_file()
    lm = json.loads((out / "lm" / "final" / "training_summary.json").read_text())
    assert lm["final_loss"] < lm["first_loss"]
    for stage in ("sft", "dpo"):
        assert (out / stage / "final" / "config.json").is_file()
        assert (out / stage / "final" / "loss_curve.png").is_file()
    assert (out / "prefs" / "pairs.jsonl").stat().st_size > 0
    for stage in ("sft", "dpo"):
        for name in ("predictions.jsonl", "metrics.json", "table.md", "per_case.jsonl"):
            assert (out / "eval" / stage / name).is_file(), (stage, name)
    model = home / "models" / "demo-fast"
    assert (model / "config.json").is_file()
    assert json.loads((model / "mu2_demo.json").read_text())["source"].endswith("dpo/final")
    demo = json.loads((out / "demo.json").read_text())
    assert [s["name"] for s in demo["stages"]] == list(STAGES)
    assert all(s["status"] == "reused" for s in demo["stages"])  # demo.json of the 2nd run
    # saving is a file copy that can round to 0.00 s on an idle machine
    assert all(s["first_run_wall_s"] > 0 for s in demo["stages"] if s["name"] != "save")
    assert all(s["first_run_wall_s"] >= 0 for s in demo["stages"])
    assert (out / "summary.md").is_file()
    for folder in ("data", "clip", "lm", "sft", "prefs", "dpo", "save", "examples"):
        assert json.loads((out / folder / "done.json").read_text())["hash"]


def test_example_reports_with_heat_maps(demo_runs: tuple[Path, str, str], real_ct_path) -> None:
    home, _, _ = demo_runs
    examples = home / "demo" / "fast" / "examples"
    cases = sorted(p.name for p in examples.iterdir() if p.is_dir())
    assert "real_ct" in cases and len(cases) == 2  # one test case (fast) + the real CT
    for case in cases:
        for name in ("report.txt", "report.json", "heatmap.png", "heatmap.nii.gz", "fhir.json"):
            assert (examples / case / name).stat().st_size > 0, (case, name)
        fhir = json.loads((examples / case / "fhir.json").read_text())
        assert fhir["resourceType"] == "DiagnosticReport" and fhir["presentedForm"]
    source = nib.load(real_ct_path)
    heat = nib.load(examples / "real_ct" / "heatmap.nii.gz")
    assert heat.shape == source.shape
    np.testing.assert_allclose(heat.affine, source.affine, atol=1e-4)
    assert np.nanmax(heat.get_fdata()) > 0
    # the real CT is asked only what it covers and the demo's model card lists; the card's
    # synthetic-data warning is in the JSON, the text and the FHIR (with the model Device)
    card = json.loads((home / "models" / "demo-fast" / "model_card.json").read_text())
    assert card["synthetic_only"] is True and card["recipe"][-1]["stage"] == "demo"
    doc = json.loads((examples / "real_ct" / "report.json").read_text())
    asked = [s["region"] for s in doc["sections"]]
    assert asked == [r for r in doc["coverage"]["regions"] if r in card["regions"]]
    warning = next(w for w in doc["warnings"] if "synthetic phantoms only" in w)
    assert f"warning: {warning}" in (examples / "real_ct" / "report.txt").read_text()
    fhir = json.loads((examples / "real_ct" / "fhir.json").read_text())
    assert fhir["contained"][0]["resourceType"] == "Device" and warning in fhir["conclusion"]


def test_printed_tables_come_from_metrics_files(demo_runs: tuple[Path, str, str]) -> None:
    home, stdout, _ = demo_runs
    out = home / "demo" / "fast"
    kinds = json.loads((out / "demo.json").read_text())["kinds"]
    metrics = {
        "SFT": json.loads((out / "eval" / "sft" / "metrics.json").read_text()),
        "SFT+DPO": json.loads((out / "eval" / "dpo" / "metrics.json").read_text()),
    }
    assert "GREEN (offline rules judge)" in stdout and "BERTScore (MiniLM-L6 backbone)" in stdout
    for name, m in metrics.items():
        (row,) = _table_rows(stdout, f"{name} (n={m['n']})")
        expected = [
            f"{m['overall'][k]:.3f}" if k in m["overall"] else "-" for k in TABLE_COLUMNS.values()
        ]
        assert row[1:] == expected
        assert all(
            k in m["overall"] for k in ("bleu1", "bleu4", "rougeL_coco", "bertscore", "green")
        )
    # Per-finding table: one row per kind of the preset, acc / sens / spec of both models.
    for kind in kinds:
        (row,) = _table_rows(stdout, kind)
        cells = row[2:]
        for i, m in enumerate(metrics.values()):
            score = m["per_finding"]["kinds"][kind]
            want = [
                "-" if score[k] is None else f"{score[k]:.3f}"
                for k in ("accuracy", "sensitivity", "specificity")
            ]
            assert cells[3 * i : 3 * i + 3] == want, kind
    for name, m in metrics.items():
        per_finding_section = stdout[stdout.index("## Per-finding") : stdout.index("## Question-")]
        (row,) = _table_rows(per_finding_section, name, width=6)
        pf = m["per_finding"]
        assert row[3] == f"{pf['differs_from_most_common_share']:.3f}"
        assert row[4] == f"{pf['scan_differs_from_most_common_share']:.3f}"
        assert row[5] == ("met" if target_check(m, kinds).met else "not met")


def test_sft_vs_dpo_printed_with_intervals(demo_runs: tuple[Path, str, str]) -> None:
    home, stdout, _ = demo_runs
    out = home / "demo" / "fast"
    section = stdout[stdout.index("## SFT vs SFT+DPO") : stdout.index("## Per-finding")]
    assert "offline rules judge" in section
    for name, stage in (("SFT", "sft"), ("SFT+DPO", "dpo")):
        m = json.loads((out / "eval" / stage / "metrics.json").read_text())
        (row,) = _table_rows(section, name)
        green, f1 = row[1], row[2]
        assert re.fullmatch(r"\d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\]", green) and green.startswith(
            f"{m['overall']['green']:.3f} ["
        )
        assert f1.startswith(f"{m['per_finding']['finding_f1_micro']:.3f} [")
    (diff,) = _table_rows(section, "SFT+DPO - SFT")
    assert re.fullmatch(r"-?\d\.\d{3} \[-?\d\.\d{3}, -?\d\.\d{3}\]", diff[2])


def test_question_dependence_is_printed_from_its_file(demo_runs: tuple[Path, str, str]) -> None:
    home, stdout, _ = demo_runs
    qd = json.loads(
        (home / "demo" / "fast" / "eval" / "question-dependence" / "question_dependence.json")
        .read_text()
    )
    section = stdout[stdout.index("## Question dependence") :]
    (row,) = _table_rows(section, "chest vs abdomen")
    assert row[1:] == [f"{qd['heat_corr']['chest|abdomen']:.3f}",
                       f"{qd['token_cos']['chest|abdomen']:.3f}"]  # fmt: skip
    for region in ("chest", "abdomen"):
        (row,) = _table_rows(section, region, width=4)
        assert row[1] == f"{qd['share_own'][region]:.3f}"


def test_vqa_accuracy_is_printed_from_the_metrics_files(demo_runs: tuple[Path, str, str]) -> None:
    home, stdout, _ = demo_runs
    out = home / "demo" / "fast"
    section = stdout[stdout.index("## Question-specific VQA") : stdout.index("## Question dependence")]
    for name, stage in (("SFT", "sft"), ("SFT+DPO", "dpo")):
        vqa = json.loads((out / "eval" / stage / "metrics.json").read_text())["vqa"]
        assert vqa["types"]  # the test rows' VQA answers were scored
        for qtype, score in [*vqa["types"].items(), ("all", vqa["overall"])]:
            (row,) = [r for r in _table_rows(section, name) if r[1] == qtype]
            assert row[2:4] == [str(score["n"]), f"{score['accuracy']:.3f}"]
            assert row[5] == f"{score['majority']:.3f}"


def test_second_run_reuses_every_stage(demo_runs: tuple[Path, str, str]) -> None:
    _, first, second = demo_runs
    pattern = r"\[\d+/\d+\] (.+?): (reused|done in|skipped)"
    ran, reused = re.findall(pattern, first), re.findall(pattern, second)
    assert len(ran) == len(reused) == len(STAGES)
    assert all(status == "done in" for _, status in ran), ran
    assert all(status == "reused" for _, status in reused), reused

    # Same numbers printed from the same files.
    def tables(text: str) -> str:
        return text[text.index("## Report generation") :]

    assert tables(first) == tables(second)

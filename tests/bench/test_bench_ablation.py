"""`mu2 bench ablation --quick` end to end: trains, predicts, scores, tabulates; every
number in the tables comes from a per-run metrics file, and those equal a separate
evaluation of the run's own predictions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mu2.cli.main import main as _main

QUICK = ["bench", "ablation", "--quick", "--data", "procedural", "--metrics", "bleu,rouge,green",
         "--quiet"]  # fmt: skip


def main(argv: list[str]) -> int:
    try:
        return _main(argv)
    except SystemExit as done:  # typer exits with SystemExit(0) on success
        return int(done.code or 0)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench") / "ablation"
    assert main([*QUICK, "--out", str(out)]) == 0
    return out


def test_quick_run_writes_tables_from_metrics_files(quick_run: Path, capsys) -> None:
    out = quick_run
    for name in ("table.md", "table.csv", "results.json", "ablation_procedural.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 100, name
    doc = json.loads((out / "results.json").read_text())
    assert doc["seeds"] == [0] and doc["rows"] == ["linvt", "mu2", "mu2+dpo"]
    cells = doc["cells"]
    assert {(c["row"], c["split"]) for c in cells} >= {("linvt", "test"), ("mu2", "test")}
    for c in cells:  # each cell is the mean of the metrics files it names
        values = [json.loads((out / s).read_text())["scores"][c["metric"]] for s in c["sources"]]
        assert c["values"] == values and c["mean"] == pytest.approx(sum(values) / len(values))
    table = (out / "table.md").read_text()
    mu2_bleu = next(
        c for c in cells if (c["row"], c["split"], c["metric"]) == ("mu2", "test", "bleu1")
    )
    assert (
        f"{mu2_bleu['mean']:.3f}" in table.split("## Table 2 layout: procedural anatomy, test")[1]
    )
    assert "QUICK RUN" in table and "GREEN (offline rules judge)" in table
    # a DPO row without pairs is reported as such, never filled in
    dpo = [c for c in cells if c["row"] == "mu2+dpo"]
    status = json.loads((out / "runs/procedural/seed0/mu2+dpo/status.json").read_text())["status"]
    assert bool(dpo) == status.startswith("trained")
    if not dpo:
        assert "no DPO: no preference pairs" in table


def test_each_preset_gets_its_own_lm_stage_and_a_frozen_llm_sft(quick_run: Path) -> None:
    """The demo recipe: LM stage per preset, SFT from it with the tower and the LLM frozen."""
    for row in ("linvt", "mu2"):
        run = quick_run / "runs/procedural/seed0" / row
        sft = json.loads((run / "sft/config.json").read_text())["model"]
        assert sft["init_from"] == str(run / "lm/final")
        assert sft["freeze_llm"] and sft["freeze_vision"] and sft["vision_path"] is None
        lm = json.loads((run / "lm/final/config.json").read_text())
        assert lm["preset"] == row  # the LM stage built the preset whose block it filled
        assert set(json.loads((run / "timing.json").read_text())) >= {"lm", "sft"}


def test_metrics_file_equals_a_separate_evaluation(quick_run: Path) -> None:
    """Scoring all runs at once (one group per run) gives each run's own numbers."""
    from mu2.metrics import EvalConfig, evaluate

    run = quick_run / "runs/procedural/seed0/mu2"
    rows = [json.loads(x) for x in (run / "predictions/test.jsonl").read_text().splitlines()]
    alone = evaluate(rows, config=EvalConfig(metrics=["bleu", "rouge", "green"], bootstrap=0))
    together = json.loads((run / "metrics/test.json").read_text())
    assert together["n"] == len(rows) > 0
    for key in ("bleu1", "bleu4", "rouge1", "rougeL_coco", "green"):
        assert together["scores"][key] == pytest.approx(alone.overall[key], abs=1e-12), key
    assert together["scores"]["finding_f1"] == pytest.approx(alone.per_finding.f1)


def test_table_command_rebuilds_the_same_table(quick_run: Path, capsys) -> None:
    before = (quick_run / "table.md").read_text()
    assert main(["bench", "table", "--out", str(quick_run)]) == 0
    assert (quick_run / "table.md").read_text() == before


def test_resume_with_another_budget_is_refused(quick_run: Path, capsys) -> None:
    code = main([*QUICK, "--out", str(quick_run), "--set", "sft.max_steps=3"])
    assert code == 2
    err = capsys.readouterr().err
    assert "another budget (sft.max_steps differ)" in err and len(err.strip().splitlines()) == 1


def test_bad_preset_is_one_line_exit_2(tmp_path: Path, capsys) -> None:
    code = main(["bench", "ablation", "--quick", "--presets", "linvt,mu3", "--out", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert "unknown preset(s) ['mu3']" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "config.json").exists()


def test_quick_keeps_explicit_values() -> None:
    from mu2.cli.bench import resolve_config

    cfg = resolve_config(None, {"seeds": 2}, ["sft.max_steps=5", "dpo.max_steps=3"], quick=True)
    assert (cfg.seeds, cfg.presets, cfg.quick) == (2, ["linvt", "mu2"], True)
    sft, dpo = cfg.recipe("sft"), cfg.recipe("dpo")
    # the command line wins over the quick profile, which keeps its other values
    assert (sft["max_steps"], sft["batch_size"], dpo["max_steps"], dpo["batch_size"]) == (5, 4, 3, 2)
    full = resolve_config(None, {"dpo": False}, [], quick=False)
    assert full.seeds == 3 and len(full.presets) == 7 and not full.dpo.enabled and not full.quick


# Recorded from the ablation as it ran before its budget became YAML (the AblationConfig
# defaults then): an edit of a recipe or profile YAML that changes it shows up here.
EXPECTED_BUDGET = {
    "clip.max_steps": 240, "clip.batch_size": 16, "clip.optim.lr": 1e-3,
    "lm.max_steps": 240, "lm.batch_size": 32, "lm.optim.lr": 3e-3, "lm.fill": "code",
    "sft.max_steps": 400, "sft.batch_size": 8, "sft.optim.lr": 1e-3, "sft.ground_weight": 0.0,
    "sft.code_weight": 1.0, "sft.code_init_rows": 256, "sft.data.max_val_cases": 32,
    "prefs.n": 8, "prefs.limit": 64, "prefs.tie_break": "none",
    "dpo.max_steps": 40, "dpo.batch_size": 8, "dpo.optim.lr": 5e-5, "dpo.beta": 0.1,
    "dpo.data.augment": False, "cases": 300, "max_new_tokens": 96,
}  # fmt: skip


def test_default_budget_is_the_recorded_one() -> None:
    from mu2.cli.bench import resolve_config

    budget = resolve_config(None, {}, [], quick=False).budget()
    assert {k: budget[k] for k in EXPECTED_BUDGET} == EXPECTED_BUDGET


def test_resume_accepts_a_recipe_key_added_since_at_its_default(tmp_path: Path) -> None:
    from mu2.bench.ablation import BUDGET, check_resume
    from mu2.bench.config import make_ablation_config
    from mu2.errors import Mu2Error

    cfg = make_ablation_config(quick=True)
    check_resume(cfg, tmp_path)
    stored = json.loads((tmp_path / BUDGET).read_text())
    assert stored["sft.code_sides"] is False
    del stored["sft.code_sides"]  # a run made before the field existed
    (tmp_path / BUDGET).write_text(json.dumps(stored))
    check_resume(cfg, tmp_path)  # the field at its default: the same budget
    (tmp_path / BUDGET).write_text(json.dumps(stored))  # (check_resume stored it again)
    changed = make_ablation_config(quick=True, overrides=["sft.code_sides=true"])
    with pytest.raises(Mu2Error, match=r"another budget \(sft.code_sides differ\)"):
        check_resume(changed, tmp_path)

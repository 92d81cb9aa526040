"""`mu2 bench ablation --profile paper`: the ablation under the paper's recipe (text-only LM
stage, next-token loss only, LLM trained), with question-specific VQA rows scored by VQA
accuracy and the question dependence of every trained model in the tables."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from mu2.cli.main import main as _main

PAPER_QUICK = ["bench", "ablation", "--profile", "paper", "--quick", "--data", "procedural",
               "--metrics", "bleu,rouge,green", "--quiet"]  # fmt: skip
QTYPES = ["presence", "side", "location", "severity"]
# What the paper profile changes in the default ablation's resolved budget, and to what.
PAPER_CHANGES = {
    "lm.context": "none",
    "sft.code_weight": 0.0,
    "sft.code_init_rows": 0,
    "sft.model.freeze_llm": False,
    "tasks": ["report", "vqa"],
    "synth": ["vqa_types=[presence,side,location,severity]", "vqa_per_case=4"],
}


def main(argv: list[str]) -> int:
    try:
        return _main(argv)
    except SystemExit as done:  # typer exits with SystemExit(0) on success
        return int(done.code or 0)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


@pytest.fixture(scope="module")
def paper_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench") / "paper"
    assert main([*PAPER_QUICK, "--out", str(out)]) == 0
    return out


def test_paper_profile_is_the_default_budget_with_the_paper_recipe() -> None:
    """Exactly the recipe keys change: stage 0, the schedules and the DPO row stay."""
    from mu2.cli.bench import resolve_config

    default = resolve_config(None, {}, [], quick=False).budget()
    cfg = resolve_config(None, {}, [], quick=False, profile="paper")
    paper = cfg.budget()
    changed = {k: paper.get(k) for k in sorted(set(paper) | set(default))
               if paper.get(k) != default.get(k)}  # fmt: skip
    assert changed == PAPER_CHANGES
    assert (paper["sft.ground_weight"], paper["dpo.model.freeze_llm"]) == (0.0, False)
    assert paper["dpo.data.augment"] is False and cfg.lm.enabled and cfg.dpo.enabled
    assert cfg.profile == "ablation-paper" and not cfg.quick
    quick = resolve_config(None, {}, [], quick=True, profile="paper")
    assert quick.profile == "ablation-paper-quick" and quick.quick
    assert {k: quick.budget()[k] for k in PAPER_CHANGES} == PAPER_CHANGES


def test_sft_wiring_runs_what_the_profile_asks(tmp_path: Path) -> None:
    """The SFT config train_sft runs (from an LM stage): the paper's recipe for the paper
    profile; the findings code only after an LM stage that wrote it."""
    from mu2.bench.ablation import report_tasks, sft_recipe
    from mu2.cli.bench import resolve_config

    lm, vision = tmp_path / "lm" / "final", tmp_path / "vision.safetensors"

    def sft(profile: str | None, sets: list[str]) -> dict:
        cfg = resolve_config(None, {}, sets, quick=False, profile=profile)
        built = sft_recipe(cfg, tmp_path / "data", tmp_path / "run", 0, "mu2", lm, vision)
        return {"code": built.code_weight, "init": built.code_init_rows,
                "ground": built.ground_weight, "freeze": built.model.freeze_llm,
                "from": built.model.init_from}  # fmt: skip

    base = {"ground": 0.0, "from": str(lm)}
    assert sft("paper", []) == {**base, "code": 0.0, "init": 0, "freeze": False}
    assert sft(None, []) == {**base, "code": 1.0, "init": 256, "freeze": True}
    # an LM stage with plain text never taught the LLM the code: no code loss then
    assert sft(None, ["lm.context=none"])["code"] == 0.0
    # DPO pairs are of reports only: GREEN ranks reports, not short answers
    assert report_tasks(resolve_config(None, {}, [], quick=False, profile="paper")) == ["report"]


def test_bad_profile_is_one_line_exit_2(tmp_path: Path, capsys) -> None:
    (tmp_path / "p.yaml").write_text("seeds: 1\n")
    cases = {
        "no shipped config 'bench/ablation-papr'": ["--profile", "papr"],
        "--quick picks the quick variant": ["--profile", str(tmp_path / "p.yaml"), "--quick"],
    }
    for message, args in cases.items():
        assert main(["bench", "ablation", *args, "--out", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "o").exists()


def test_paper_run_trains_the_paper_recipe(paper_run: Path) -> None:
    """The dumped configs of what ran: text-only LM stage, SFT with the next-token loss
    alone (no code or grounding term logged), the LLM trained, from the LM stage."""
    for row in ("linvt", "mu2"):
        run = paper_run / "runs/procedural/seed0" / row
        lm = json.loads((run / "lm/config.json").read_text())
        assert lm["context"] == "none"
        sft = json.loads((run / "sft/config.json").read_text())
        assert (sft["code_weight"], sft["code_init_rows"], sft["ground_weight"]) == (0.0, 0, 0.0)
        assert sft["model"]["init_from"] == str(run / "lm/final")
        assert not sft["model"]["freeze_llm"] and sft["model"]["freeze_vision"]
        logged = {k for r in read_jsonl(run / "sft/metrics.jsonl") for k in r}
        assert "loss" in logged and not logged & {"code", "ground"}, logged
    synth = json.loads((paper_run / "data/procedural/manifest.json").read_text())["config"]
    assert (synth["vqa_types"], synth["vqa_per_case"]) == (QTYPES, 4)
    rows = read_jsonl(paper_run / "data/procedural/test.jsonl")
    assert {r.get("qtype") for r in rows if r["task"] == "vqa"} == set(QTYPES)


def _accuracy(rows: list[dict]) -> float:
    """Independent of mu2.metrics.vqa: a prediction equal to its reference is right, one
    reading 'maybe' is right for no question type."""
    return sum(r["prediction"] == r["reference"] for r in rows) / len(rows)


def test_vqa_accuracy_is_scored_per_run_and_type(paper_run: Path, tmp_path: Path) -> None:
    """The runs' VQA rows are scored by VQA accuracy, the reports by the text metrics;
    the scorer's numbers match arithmetic on known answers."""
    from mu2.bench.score import RunPredictions, score_runs

    run = paper_run / "runs/procedural/seed0/mu2"
    preds = read_jsonl(run / "predictions/test.jsonl")
    vqa = [r for r in preds if r["task"] == "vqa"]
    doc = json.loads((run / "metrics/test.json").read_text())
    assert (doc["n"], doc["n_vqa"]) == (len(preds) - len(vqa), len(vqa)) and vqa
    assert set(doc["vqa"]["types"]) == set(QTYPES)
    # Known answers: every other VQA row answered right, the rest 'maybe'.
    rows = [*preds, *read_jsonl(run / "predictions/test_generalisation.jsonl")]
    vqa = [r for r in rows if r["task"] == "vqa"]
    for i, r in enumerate(vqa):
        r["prediction"] = r["reference"] if i % 2 == 0 else "Maybe."
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    got = score_runs(
        [RunPredictions("d", 0, "mu2", "test", path, tmp_path / "m.json")], ["bleu"],
        tmp_path / "eval", progress=False,
    )["d/seed0/mu2/test"]  # fmt: skip
    assert got["scores"]["vqa_accuracy"] == pytest.approx(_accuracy(vqa))
    for q in QTYPES:
        mine = [r for r in vqa if r["qtype"] == q]
        assert got["scores"][f"vqa_accuracy.{q}"] == pytest.approx(_accuracy(mine)), q
    assert got["n"] == len(rows) - len(vqa)  # the text metrics saw the reports only


def test_table_has_vqa_and_question_dependence_from_the_files(paper_run: Path) -> None:
    doc = json.loads((paper_run / "results.json").read_text())
    assert doc["config"]["profile"] == "ablation-paper-quick"
    cells = {(c["row"], c["split"], c["metric"]): c for c in doc["cells"]}
    table = (paper_run / "table.md").read_text()
    assert "LM stage context none; SFT code loss weight 0.0" in table
    assert "LLM trained" in table
    vqa_part = table.split("## VQA accuracy")[1]
    for row in ("linvt", "mu2"):
        for key in ["vqa_accuracy", *(f"vqa_accuracy.{q}" for q in QTYPES)]:
            c = cells[(row, "test", key)]
            values = [json.loads((paper_run / s).read_text())["scores"][key] for s in c["sources"]]
            assert c["values"] == values and 0.0 <= c["mean"] <= 1.0
        # question dependence: the run's file measured this run's model on <= 2 scans
        qd = json.loads(
            (paper_run / "runs/procedural/seed0" / row / "question_dependence.json").read_text()
        )
        assert qd["model"].endswith(f"{row}/sft/final") and 1 <= qd["summary"]["scans"] <= 2
        per_scan = [s["heat_corr"][k] for s in qd["scans"] for k in s["heat_corr"]]
        r = cells[(row, "test", "qdep.heat_r.abdomen|chest")]
        assert r["mean"] == pytest.approx(statistics.fmean(per_scan), abs=1e-4)
        assert -1.0 <= r["mean"] <= 1.0
        for region in ("chest", "abdomen"):
            own = cells[(row, "test", f"qdep.share_own.{region}")]["mean"]
            scans = [s["share"][region][region] for s in qd["scans"] if s["share"]]
            assert own == pytest.approx(statistics.fmean(scans), abs=1e-4) and 0 <= own <= 1
    mu2_acc = cells[("mu2", "test", "vqa_accuracy")]["mean"]
    assert f"| mu2 Tokenizer, SFT | {mu2_acc:.3f} |" in vqa_part
    qdep_part = table.split("## Question dependence: procedural anatomy, test split")[1]
    r = cells[("mu2", "test", "qdep.heat_r.abdomen|chest")]["mean"]
    assert f"| mu2 Tokenizer, SFT | {r:.3f} |" in qdep_part
    assert "always the most common answer" in vqa_part


def test_question_dependence_file_is_the_measurement_of_the_model(paper_run: Path) -> None:
    """Re-measuring the saved model on its first scan gives the file's first scan."""
    from mu2.generate.question_dependence import question_dependence, split_scans
    from mu2.model import Mu2ForConditionalGeneration

    run = paper_run / "runs/procedural/seed0/mu2"
    saved = json.loads((run / "question_dependence.json").read_text())["scans"][0]
    net = Mu2ForConditionalGeneration.from_pretrained(run / "sft/final").eval()
    again = question_dependence(net, net.processor, split_scans(paper_run / "data/procedural"), 1)
    assert again.scans[0].case_id == saved["case_id"]
    assert again.scans[0].heat_corr == pytest.approx(saved["heat_corr"], nan_ok=True)
    assert again.scans[0].token_self_cos == pytest.approx(saved["token_self_cos"])
    for region, shares in saved["share"].items():
        assert again.scans[0].share[region] == pytest.approx(shares), region


def test_resume_with_other_data_overrides_is_refused(paper_run: Path, capsys) -> None:
    code = main([*PAPER_QUICK, "--out", str(paper_run), 'synth=["vqa_types=[presence]"]'])
    assert code == 2
    err = capsys.readouterr().err
    assert "another budget (synth differ)" in err and len(err.strip().splitlines()) == 1

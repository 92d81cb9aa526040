"""VQA accuracy: closed-answer classes, hand-computed accuracies, intervals, ``mu2 eval``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mu2.cli.main import main
from mu2.errors import Mu2Error
from mu2.metrics import EvalConfig, evaluate
from mu2.metrics.vqa import answer_class, vqa_accuracy

# (id, qtype or None, reference, prediction); right or wrong decided by hand in the comment.
VQA = [
    ("p1", None, "No.", "no"),  # right (untyped yes/no row: presence)
    ("p2", "presence", "Yes, moderate.", "Yes."),  # right
    ("p3", "presence", "Yes.", "No, there is none."),  # wrong
    ("s1", "side", "Left.", "left side"),  # right
    ("s2", "side", "Both sides.", "Bilateral."),  # right
    ("s3", "side", "Neither side.", "There is no pleural effusion."),  # right
    ("s4", "side", "Right.", "Left."),  # wrong
    ("l1", "location", "Yes.", "YES"),  # right
    ("l2", "location", "No.", "Yes."),  # wrong
    ("v1", "severity", "Small.", "mild"),  # right (the reports' words for one grade)
    ("v2", "severity", "Large.", "Moderate."),  # wrong
    ("v3", "severity", "None.", "a lot of fluid"),  # wrong (no closed answer)
    ("u1", None, "The liver is enlarged.", "Hepatomegaly."),  # unscored: free-form QA
]
# Worked out by hand from the comments above.
ACCURACY = {"presence": 2 / 3, "side": 3 / 4, "location": 1 / 2, "severity": 1 / 3}
OVERALL = 7 / 12
# Most common reference class per type: presence yes 2/3, side 1/4, location 1/2,
# severity 1/3; overall (2 + 1 + 1 + 1) / 12.
MAJORITY = {"presence": 2 / 3, "side": 1 / 4, "location": 1 / 2, "severity": 1 / 3}
REPORTS = [
    ("r1", "Small left pleural effusion.", "Small left pleural effusion."),
    ("r2", "Hepatic steatosis. No ascites.", "The liver is normal. Moderate ascites."),
    ("r3", "Splenomegaly.", "The spleen is enlarged."),
]


def run_cli(args: list[str]) -> int:
    try:
        return main(args)
    except SystemExit as done:  # typer's standalone mode exits with SystemExit on success
        return int(done.code or 0)


def vqa_rows() -> list[dict]:
    rows = []
    for rid, qtype, ref, pred in VQA:
        row = {"id": rid, "task": "vqa", "reference": ref, "prediction": pred}
        if qtype:
            row["qtype"] = qtype
        rows.append(row)
    return rows


def report_rows() -> list[dict]:
    return [
        {"id": rid, "task": "report", "reference": ref, "prediction": pred}
        for rid, ref, pred in REPORTS
    ]


@pytest.mark.parametrize(
    ("text", "qtype", "cls"),
    [
        ("Yes, in the left kidney, 18 mm.", "presence", "yes"),
        ("  no ", "location", "no"),
        ("Maybe.", "presence", None),
        ("On the RIGHT!", "side", "right"),
        ("both", "side", "both"),
        ("There is no hydronephrosis.", "side", "none"),
        ("Left and right.", "side", None),
        ("Trace", "severity", "mild"),
        ("Marked.", "severity", "severe"),
        ("No ascites", "severity", "none"),
        ("Left-sided.", "side", "left"),
        ("Bilateral", "side", "both"),
        ("On both sides", "side", "both"),
        ("neither side", "side", "none"),
        ("Massive", "severity", "severe"),
        ("moderately", "severity", "moderate"),
        ("mild to moderate", "severity", None),
    ],
)
def test_answers_normalise_to_their_closed_class(text, qtype, cls) -> None:
    assert answer_class(text, qtype) == cls


def test_accuracy_per_type_and_overall_equal_the_hand_count() -> None:
    result = vqa_accuracy(vqa_rows(), n_resamples=0)
    assert result.unscored == 1
    assert list(result.types) == ["presence", "side", "location", "severity"]
    for qtype, acc in ACCURACY.items():
        assert result.types[qtype].accuracy == pytest.approx(acc), qtype
        assert result.types[qtype].majority == pytest.approx(MAJORITY[qtype]), qtype
        assert result.types[qtype].ci is None
    assert result.overall.n == 12
    assert result.overall.accuracy == pytest.approx(OVERALL)
    assert result.overall.majority == pytest.approx(5 / 12)
    right = {r["id"] for r in result.per_case if r["correct"]}
    assert right == {"p1", "p2", "s1", "s2", "s3", "l1", "v1"}


def test_interval_is_the_seeded_percentile_bootstrap_of_the_rows() -> None:
    result = vqa_accuracy(vqa_rows(), n_resamples=400, seed=7)
    correct = np.array([1, 1, 0, 1, 1, 1, 0, 1, 0, 1, 0, 0], dtype=float)  # by hand, row order
    draws = np.random.default_rng(7).integers(0, 12, size=(400, 12))
    lo, hi = np.quantile(correct[draws].mean(axis=1), [0.025, 0.975])
    assert result.overall.ci == pytest.approx((lo, hi))
    assert result.overall.ci[0] < OVERALL < result.overall.ci[1]
    # each type within its own rows, seed + 1 + its place: side is 2nd, rows 3..6
    side = correct[3:7][np.random.default_rng(7 + 1 + 1).integers(0, 4, size=(400, 4))]
    assert result.types["side"].ci == pytest.approx(
        tuple(np.quantile(side.mean(axis=1), [0.025, 0.975]))
    )
    assert result.types["location"].ci != result.types["side"].ci


def test_bad_rows_are_clear_errors() -> None:
    bad_type = [{"id": "x", "task": "vqa", "qtype": "size", "reference": "No.", "prediction": ""}]
    with pytest.raises(Mu2Error, match="row id='x': unknown qtype 'size'"):
        vqa_accuracy(bad_type)
    bad_ref = [{"id": "y", "task": "vqa", "qtype": "side", "reference": "Up.", "prediction": ""}]
    with pytest.raises(Mu2Error, match="row id='y'.*no closed side answer"):
        vqa_accuracy(bad_ref)
    free = [{"id": "z", "task": "vqa", "reference": "Enlarged liver.", "prediction": ""}]
    with pytest.raises(Mu2Error, match="none of the 1 VQA rows"):
        vqa_accuracy(free)


def test_evaluate_scores_reports_as_before_and_vqa_rows_by_class(tmp_path) -> None:
    cfg = EvalConfig(metrics=["bleu", "rouge"], bootstrap=50, name="m")
    alone = evaluate(report_rows(), config=cfg)
    mixed = evaluate(vqa_rows() + report_rows(), config=cfg, out_dir=tmp_path)
    assert mixed.n == 3 and mixed.overall == alone.overall and mixed.ci == alone.ci
    assert alone.vqa is None and "VQA" not in alone.table_markdown()
    assert mixed.vqa is not None and mixed.vqa.overall.accuracy == pytest.approx(OVERALL)
    table = mixed.table_markdown()
    assert "exact match of the closed answer" in table and "| side | 4 | 0.750 |" in table
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["vqa"]["types"]["severity"]["accuracy"] == pytest.approx(1 / 3)
    assert len((tmp_path / "vqa_per_case.jsonl").read_text().splitlines()) == 12
    assert "vqa:all,12,vqa_accuracy" in (tmp_path / "metrics.csv").read_text()


def test_mu2_eval_on_vqa_rows_only_and_a_bad_qtype(tmp_path, capsys) -> None:
    pred = tmp_path / "pred.jsonl"
    pred.write_text("".join(json.dumps(r) + "\n" for r in vqa_rows()))
    args = ["eval", "--pred", str(pred), "--metrics", "bleu", "--bootstrap", "20", "-q"]
    assert run_cli(args) == 0
    out = capsys.readouterr().out
    assert "exact match of the closed answer" in out and "| all | 12 | 0.583 |" in out
    assert "BLEU-1" not in out  # no report rows: no report metrics
    pred.write_text(json.dumps({**vqa_rows()[1], "qtype": "sides"}) + "\n")
    assert run_cli(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unknown qtype 'sides'" in err

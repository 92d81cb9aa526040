"""Corpus GREEN: mean, population sd, error profile, saved answers, rules judge wiring."""

from __future__ import annotations

import json
import math

import pytest

from mu2.errors import Mu2Error
from mu2.metrics.green import RULES_LABEL, make_judge, score_answers
from mu2.metrics.green.score import ANSWERS_FILE, green_corpus


def _answer(matched: int, a: int = 0, b: int = 0) -> str:
    return (
        f"[Explanation]:\nx\n\n[Clinically Significant Errors]:\n(a) False report: {a}. x.\n"
        f"(b) Missing: {b}. y.\n\n[Matched Findings]:\n{matched}. z."
    )


def test_corpus_summary_and_saved_answers(tmp_path) -> None:
    answers = [_answer(1), _answer(1, a=1), _answer(3, a=1, b=2), "garbage"]
    result = score_answers(answers, "test judge", ids=["p", "q", "r", "s"])
    scores = [1.0, 0.5, 0.5, 0.0]
    mean = sum(scores) / 4
    assert list(result.scores) == scores
    assert result.mean == pytest.approx(mean)
    assert result.sd == pytest.approx(math.sqrt(sum((s - mean) ** 2 for s in scores) / 4))
    assert result.zero_error_share["a"] == 0.5  # p and s have no (a) error
    assert result.zero_error_share["b"] == 0.75
    assert result.zero_error_share["c"] == 1.0
    assert result.subset([1, 2]).mean == 0.5

    path = result.save_answers(tmp_path)
    assert path.name == ANSWERS_FILE
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["p", "q", "r", "s"]
    assert rows[2]["answer"] == answers[2] and rows[2]["significant"]["b"] == 2
    assert rows[3]["score"] == 0.0 and rows[0]["judge"] == "test judge"


def test_unknown_backend_is_a_user_error() -> None:
    for spec in ("gpt4", "hf:", "openai:", "rules:x"):
        with pytest.raises(Mu2Error, match="unknown GREEN backend"):
            make_judge(spec)


def test_rules_backend_scores_identical_reports_one_and_is_labelled(tmp_path) -> None:
    judge = make_judge("rules")
    assert judge.offline and judge.label == RULES_LABEL and "not the GREEN model" in judge.label
    ref = "Small left pleural effusion. A 6 mm nodule in the right lower lobe."
    cand = "Small left pleural effusion."
    result = green_corpus(judge, [ref, ref], [ref, cand], ids=["same", "missing"], out_dir=tmp_path)
    assert result.judge == RULES_LABEL
    assert result.scores[0] == 1.0
    assert result.parsed[1].significant["b"] >= 1 and result.scores[1] < 1.0
    assert (tmp_path / ANSWERS_FILE).is_file()

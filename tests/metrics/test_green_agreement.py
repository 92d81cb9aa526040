"""The offline rules judge against hand-labelled CT pairs, per GREEN category."""

import json

import pytest

from mu2.metrics.green import make_judge, parse_answer
from mu2.metrics.green.agreement import CATEGORIES, agreement, counts, read_labelled_pairs


@pytest.fixture(scope="module")
def result(data_dir):
    pairs = read_labelled_pairs(data_dir / "green" / "ct_pairs.jsonl")
    return agreement(pairs, make_judge("rules"))


@pytest.mark.parametrize("category", CATEGORIES)
def test_rules_judge_agrees_with_hand_labels(result, category):
    assert result.labelled[category] >= 2  # every category is really exercised
    assert result.agree[category] == result.total, result.disagreements


def test_every_pair_agrees_in_every_category(result):
    assert result.total >= 25 and result.exact == result.total, result.disagreements
    assert "offline rules judge" in result.table(make_judge("rules").label)


def test_protocol_worked_example_counts(data_dir):
    example = json.loads((data_dir / "green" / "protocol_worked_example.json").read_text())
    parsed = parse_answer(example["answer"])
    assert counts(parsed) == {"matched": example["matched"], **example["significant"]}
    assert parsed.score == pytest.approx(example["score"])

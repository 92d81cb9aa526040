"""``mu2.metrics.evaluate``: values equal the metric modules on the same rows, groups are
scored on their own rows, intervals are seeded percentiles, bad input names file and line."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from mu2.errors import Mu2Error
from mu2.metrics import EvalConfig, evaluate, read_predictions
from mu2.metrics.green import RULES_LABEL, make_judge
from mu2.metrics.green.score import green_corpus
from mu2.metrics.nlg import bleu, rouge_f1, rouge_l_coco

CHEST = [
    (
        "Small left pleural effusion. A 6 mm nodule in the right upper lobe.",
        "Small left pleural effusion. A 6 mm nodule in the right upper lobe.",
    ),
    ("Moderate right pleural effusion. No lung nodule.", "Moderate left pleural effusion."),
    ("No pleural effusion. A 9 mm nodule in the left lower lobe.", "No pleural effusion."),
]
ABDOMEN = [
    ("Hepatic steatosis. A 12 mm cyst in the left kidney.", "Hepatic steatosis. No renal cyst."),
    ("The liver is normal. Splenomegaly. No ascites.", "The liver is normal. Splenomegaly."),
    ("Moderate ascites. The spleen is normal.", "Mild ascites. Gallstones are present."),
]


def _rows() -> list[dict]:
    rows = []
    for region, pairs in (("chest", CHEST), ("abdomen", ABDOMEN)):
        for i, (ref, pred) in enumerate(pairs):
            rows.append(
                {"id": f"{region}{i}", "region": region, "reference": ref, "prediction": pred}
            )
    return rows


@pytest.fixture(scope="module")
def result_and_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("eval")
    cfg = EvalConfig(bootstrap=200, seed=3, name="tiny")
    return evaluate(_rows(), metrics="bleu,rouge,green", by="region", out_dir=out, config=cfg), out


def test_overall_and_group_values_equal_the_metric_modules(result_and_dir) -> None:
    result, _ = result_and_dir
    rows = _rows()
    refs, preds = [r["reference"] for r in rows], [r["prediction"] for r in rows]
    assert result.overall["bleu1"] == pytest.approx(bleu(refs, preds).corpus[0])
    assert result.overall["bleu4"] == pytest.approx(bleu(refs, preds).corpus[3])
    assert result.overall["rougeL_coco"] == pytest.approx(rouge_l_coco(refs, preds).mean())
    assert result.overall["rouge1"] == pytest.approx(rouge_f1(refs, preds)["rouge1"].mean())
    green = green_corpus(make_judge("rules"), refs, preds)
    assert result.overall["green"] == pytest.approx(green.mean)
    assert result.labels["green"] == RULES_LABEL
    chest = [r for r in rows if r["region"] == "chest"]
    chest_refs, chest_preds = [r["reference"] for r in chest], [r["prediction"] for r in chest]
    assert result.group_sizes == {"abdomen": 3, "chest": 3}
    assert result.groups["chest"]["bleu1"] == pytest.approx(bleu(chest_refs, chest_preds).corpus[0])
    assert result.groups["chest"]["green"] == pytest.approx(
        green_corpus(make_judge("rules"), chest_refs, chest_preds).mean
    )
    assert "meteor" not in result.overall and "bertscore" not in result.overall


def test_intervals_are_seeded_percentiles_around_the_estimate(result_and_dir) -> None:
    result, _ = result_and_dir
    assert set(result.ci) == set(result.overall)
    for key, (lo, hi) in result.ci.items():
        assert lo <= hi
        if not key.startswith("bleu"):  # a mean sits inside its bootstrap interval
            assert lo <= result.overall[key] <= hi
    again = evaluate(_rows(), metrics="rouge", config=EvalConfig(bootstrap=200, seed=3))
    assert again.ci["rouge1"] == result.ci["rouge1"]
    other = evaluate(_rows(), metrics="rouge", config=EvalConfig(bootstrap=200, seed=4))
    assert other.ci["rouge1"] != result.ci["rouge1"]
    # Percentile interval of resampled means, recomputed here from the per-case values.
    values = np.array([c["rouge1"] for c in result.per_case])
    draws = np.random.default_rng(3).integers(0, 6, size=(200, 6))
    lo, hi = np.quantile(values[draws].mean(axis=1), [0.025, 0.975])
    assert result.ci["rouge1"] == pytest.approx((lo, hi))


def test_output_files(result_and_dir) -> None:
    result, out = result_and_dir
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["overall"] == pytest.approx(result.overall)
    assert saved["groups"]["chest"]["n"] == 3 and "green" in saved["groups"]["chest"]
    assert saved["green"]["judge"] == RULES_LABEL and set(
        saved["green"]["zero_error_share"]
    ) == set("abcdef")
    with (out / "metrics.csv").open() as f:
        table = list(csv.DictReader(f))
    assert {r["group"] for r in table} == {"all", "chest", "abdomen"}
    assert (
        next(r for r in table if r["group"] == "all" and r["metric"] == "green")["label"]
        == RULES_LABEL
    )
    md = (out / "table.md").read_text()
    header = md.splitlines()[0]
    assert header.startswith("| Method | BLEU-1 | BLEU-4 | ROUGE-1 | ROUGE-L | METEOR | BERTScore")
    assert "GREEN (offline rules judge)" in header and "the paper's BLEU" in md
    cases = [json.loads(line) for line in (out / "per_case.jsonl").read_text().splitlines()]
    assert [c["id"] for c in cases] == [r["id"] for r in _rows()]
    assert all({"bleu1", "rouge1", "green", "green_matched", "region"} <= set(c) for c in cases)
    answers = (out / "green_answers.jsonl").read_text().splitlines()
    assert len(answers) == 6 and "[Matched Findings]" in json.loads(answers[0])["answer"]


def test_per_finding_block_when_rows_carry_findings() -> None:
    rows = _rows()[:2]
    rows[0]["findings"] = [
        {"organ": "pleura", "finding": "pleural_effusion", "side": "left", "severity": "mild"},
        {"organ": "lung", "finding": "lung_nodule", "side": "right", "size_mm": 6.0},
    ]
    rows[1]["findings"] = [{"organ": "pleura", "finding": "pleural_effusion", "side": "right"}]
    result = evaluate(rows, metrics="rouge", config=EvalConfig(bootstrap=0))
    assert result.per_finding is not None and result.ci == {}
    assert result.per_finding.kinds["pleural_effusion"].tp == 2
    assert "Per-finding accuracy" in result.table_markdown()
    rows[1]["findings"] = [{"organ": "liver", "finding": "pleural_effusion"}]
    with pytest.raises(Mu2Error, match="chest1"):
        evaluate(rows, metrics="rouge", config=EvalConfig(bootstrap=0))


def test_bad_prediction_files_name_file_and_line(tmp_path) -> None:
    with pytest.raises(Mu2Error, match="not found"):
        read_predictions(tmp_path / "missing.jsonl")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(Mu2Error, match="no rows"):
        read_predictions(empty)
    bad = tmp_path / "bad.jsonl"
    good = json.dumps({"id": 1, "prediction": "a", "reference": "b"})
    bad.write_text(good + "\n{not json\n")
    with pytest.raises(Mu2Error, match=r"bad.jsonl:2: not valid JSON"):
        read_predictions(bad)
    bad.write_text(good + "\n\n" + json.dumps({"id": 2, "prediction": "a"}) + "\n")
    with pytest.raises(Mu2Error, match=r"bad.jsonl:3: missing key\(s\) reference"):
        read_predictions(bad)
    bad.write_text(good + "\n" + good + "\n")
    with pytest.raises(Mu2Error, match=r"bad.jsonl:2: duplicate id '1'"):
        read_predictions(bad)
    bad.write_text(json.dumps({"id": 1, "prediction": None, "reference": "b"}) + "\n")
    with pytest.raises(Mu2Error, match="'prediction' must be a string"):
        read_predictions(bad)


def test_bad_settings_are_user_errors() -> None:
    with pytest.raises(Mu2Error, match="unknown metrics"):
        EvalConfig(metrics="bleu,cider")
    with pytest.raises(Mu2Error, match="cannot group by"):
        evaluate(_rows(), metrics="rouge", by="organ")
    rows = _rows()
    del rows[2]["region"]
    with pytest.raises(Mu2Error, match="chest2.*has no 'region'"):
        evaluate(rows, metrics="rouge", by="region")
    with pytest.raises(Mu2Error, match="no prediction rows"):
        evaluate([], metrics="rouge")

"""Preference pairs with the real offline GREEN judge and a real (untrained) mu2 model."""

import json

from mu2.metrics.green import make_judge
from mu2.train.config import PrefsConfig
from mu2.train.prefs import build_pairs, rank_samples, skipped_path


def _reports(synth_dir):
    rows = [json.loads(x) for x in (synth_dir / "train.jsonl").read_text().splitlines()]
    return [r for r in rows if r["task"] == "report"]


def test_rank_samples_keeps_best_and_worst(synth_dir):
    reports = [r for r in _reports(synth_dir) if r["region"] == "abdomen"]
    reference = reports[0]["answer"]
    wrong = next(r["answer"] for r in reports if r["answer"] != reference)
    samples = ["", wrong, "the liver liver liver liver is big", reference]
    result = rank_samples(samples, reference, make_judge("rules"), min_length=3)
    assert result.skip is None
    assert result.chosen == reference and result.rejected == wrong
    assert result.chosen_green == 1.0 > result.rejected_green
    assert result.degenerate == {"empty": 1, "loop": 1}
    same = rank_samples([reference, reference], reference, make_judge("rules"), min_length=3)
    assert same.skip == "tie"
    assert rank_samples(["", "x"], reference, make_judge("rules"), 3).skip == "degenerate"


def test_build_pairs_counts_writes_and_resumes(synth_dir, tiny_model_dir, tmp_path):
    out = tmp_path / "prefs" / "pairs.jsonl"
    cfg = PrefsConfig(
        model=str(tiny_model_dir), data=str(synth_dir / "train.jsonl"), out=str(out), n=3,
        limit=3, max_new_tokens=8, min_length=1, device="cpu", num_threads=1,
    )  # fmt: skip
    summary = build_pairs(cfg)
    assert summary.total == 3 and summary.already_done == 0
    assert summary.written + sum(summary.skipped.values()) == 3
    # An untrained model's samples share no finding with the reference: every case is
    # skipped as best_zero, each with its n scores of 0.
    assert summary.written == 0 and dict(summary.skipped) == {"best_zero": 3}
    assert "offline rules judge" in summary.describe()
    written = [json.loads(x) for x in out.read_text().splitlines()] if out.exists() else []
    skipped = (
        [json.loads(x) for x in skipped_path(out).read_text().splitlines()]
        if summary.skipped
        else []
    )
    assert [r["reason"] for r in skipped] == ["best_zero"] * 3
    assert all(r["scores"] == [0.0] * 3 for r in skipped)
    report_ids = [r["id"] for r in _reports(synth_dir)][:3]
    assert sorted(r["id"] for r in written + skipped) == sorted(report_ids)  # report rows only
    for row in written:
        assert (out.parent / row["image"]).is_file()  # image relative to the output folder
        assert row["chosen_green"] > row["rejected_green"]
    again = build_pairs(cfg)  # resumable: nothing left to do
    assert again.already_done == 3 and again.written == 0

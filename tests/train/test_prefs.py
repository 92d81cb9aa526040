"""Preference pairs with the real offline GREEN judge and a real (untrained) mu2 model."""

import dataclasses
import json
from pathlib import Path

import pytest

from mu2.metrics.green import make_judge
from mu2.train.config import PrefsConfig
from mu2.train.prefs import build_pairs, rank_samples, sample_group, skipped_path


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


@pytest.fixture(scope="module")
def sft_model(synth_dir, tmp_path_factory):
    """A real SFT model after 30 steps on the synthetic rows: it writes word salad that
    GREEN can still rank (an untrained model's samples all score 0 and give no pair)."""
    from mu2.config import load_config
    from mu2.train.config import SFTConfig
    from mu2.train.sft import run_sft

    from .conftest import _sft_overrides

    out = tmp_path_factory.mktemp("sft30")
    return run_sft(load_config(SFTConfig, None, _sft_overrides(synth_dir, out, "max_steps=30")))


def _rows(path):
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_build_pairs_counts_writes_and_resumes(synth_dir, sft_model, tmp_path):
    out = tmp_path / "prefs" / "pairs.jsonl"
    cfg = PrefsConfig(
        model=str(sft_model), data=str(synth_dir / "train.jsonl"), out=str(out), n=4,
        max_new_tokens=48, min_length=1, device="cpu", num_threads=1, tie_break="errors",
    )  # fmt: skip
    summary = build_pairs(cfg)
    report_ids = [r["id"] for r in _reports(synth_dir)]
    assert summary.total == len(report_ids) and summary.already_done == 0  # every case
    assert summary.written >= 3  # real pairs, not only skips
    assert summary.written + sum(summary.skipped.values()) == summary.total
    assert "offline rules judge" in summary.describe()
    written, skipped = _rows(out), _rows(skipped_path(out))
    assert len(written) == summary.written
    assert sorted(r["id"] for r in written + skipped) == sorted(report_ids)  # report rows only
    assert {r["reason"] for r in skipped} <= {"degenerate", "best_zero", "tie", "small_margin"}
    for row in written:
        assert (out.parent / row["image"]).is_file()  # image relative to the output folder
        assert row["chosen"] != row["rejected"]
        assert (row["chosen_green"], -row["chosen_errors"]) > (
            row["rejected_green"], -row["rejected_errors"]
        )
    again = build_pairs(cfg)  # resumable: nothing left to do
    assert again.already_done == summary.total and again.written == 0

    strict = dataclasses.replace(cfg, out=str(tmp_path / "strict" / "pairs.jsonl"), min_margin=0.3)
    kept = build_pairs(strict)
    assert kept.written + sum(kept.skipped.values()) == kept.total
    margins = [r["chosen_green"] - r["rejected_green"] for r in _rows(Path(strict.out))]
    assert all(m >= 0.3 for m in margins) and kept.written <= summary.written
    assert kept.written + kept.skipped["small_margin"] + kept.skipped["tie"] == summary.written + (
        summary.skipped["tie"]
    )  # the same samples: the margin filter only moves pairs to small_margin


def test_resume_draws_a_partly_done_group_whole_again(synth_dir, sft_model, tmp_path):
    """Groups of 3 cases sampled together: a run killed after part of a group writes, on
    resumption, the very pairs an uninterrupted run writes."""
    out = tmp_path / "whole" / "pairs.jsonl"
    cfg = PrefsConfig(
        model=str(sft_model), data=str(synth_dir / "train.jsonl"), out=str(out), n=4,
        max_new_tokens=48, min_length=1, device="cpu", num_threads=1, sample_rows=3,
    )  # fmt: skip
    build_pairs(cfg)
    whole = {r["id"]: r for r in _rows(out) + _rows(skipped_path(out))}
    cut = tmp_path / "cut" / "pairs.jsonl"
    cut.parent.mkdir()
    first = _reports(synth_dir)[0]["id"]  # the first case of the first group, alone
    kept = [r for r in _rows(out) if r["id"] == first]
    kept_skips = [r for r in _rows(skipped_path(out)) if r["id"] == first]
    cut.write_text("".join(json.dumps(r) + "\n" for r in kept))
    skipped_path(cut).write_text("".join(json.dumps(r) + "\n" for r in kept_skips))
    resumed = build_pairs(dataclasses.replace(cfg, out=str(cut)))
    assert resumed.already_done == 1
    again = {r["id"]: r for r in _rows(cut) + _rows(skipped_path(cut))}
    assert again == whole


def test_sample_group_keeps_each_cases_samples_with_its_case(synth_dir, sft_model, monkeypatch):
    """Cases sampled in one batch: the reports returned for case i were decoded from case
    i's volume and question. The real decode runs; a wrapper records what it was given
    (the 30-step model's answers do not differ enough between cases to tell them apart)."""
    import mu2.train.sampling as sampling
    from mu2.engine.dataset import adopt_prep, prepare_fn
    from mu2.train.sft import load_sft_model

    model = load_sft_model(str(sft_model)).eval()
    adopt_prep(model, "tiny", trained=True)
    prep, _ = prepare_fn("tiny")
    rows = [json.loads(x) for x in (synth_dir / "train.jsonl").read_text().splitlines()][:3]
    frames = [prep(r, synth_dir / "train.jsonl") for r in rows]
    questions = [f"{r['question']} ({i})" for i, r in enumerate(rows)]
    real, seen = sampling.generate_reports, []

    def recording(model, processor, frames, questions, **kw):
        texts = real(model, processor, frames, questions, **kw)
        seen.extend(zip(frames, questions, texts, strict=True))
        return texts

    monkeypatch.setattr(sampling, "generate_reports", recording)
    cfg = PrefsConfig(n=2, max_new_tokens=24)
    ids = [str(r["id"]) for r in rows]
    drawn = sample_group(model, model.processor, frames, questions, cfg, ids, "cpu")
    assert len(seen) == 6 and len(drawn) == 3
    for i, samples in enumerate(drawn):
        mine = [t for f, q, t in seen if f is frames[i] and q == questions[i]]
        assert len(mine) == 2 and samples == mine
    assert len({t for _, _, t in seen}) > 1  # sampled reports differ, so a mix-up would show

"""Text pretraining of the tiny LLM: the findings land in the image block, the loss falls,
and SFT starts from the saved folder."""

from __future__ import annotations

import json
import random

import pytest
import torch

from mu2.config import load_config
from mu2.data.schema import Record, read_jsonl
from mu2.model import Mu2ForConditionalGeneration
from mu2.train.aids.context_lm import (
    context_block,
    context_words,
    fill_image_block,
    run_lm_pretrain,
)
from mu2.train.config import LMConfig
from mu2.train.sft import build_model

from ..conftest import SMALL_MODEL


def test_context_words_name_the_findings_or_normal():
    row = Record(id="a", image="x", question="q", findings=[
        {"organ": "liver", "finding": "hepatomegaly"},
        {"organ": "peritoneum", "finding": "ascites"},
    ])  # fmt: skip
    assert context_words(row) == "ascites, hepatomegaly"
    assert context_words(Record(id="b", image="x", question="q")) == "normal"


def test_context_block_repeats_or_places_the_words_once():
    rng = random.Random(0)
    assert context_block([20, 21], 7, "repeat", [9], 7, rng) == [20, 21, 9, 20, 21, 9, 20]
    once = context_block([20, 21], 6, "once", [9], 7, rng)
    assert once.count(7) == 4 and [t for t in once if t != 7] == [20, 21]
    assert context_block([1, 2, 3, 4, 5], 3, "once", [9], 7, rng) == [1, 2, 3]  # cut


def test_fill_image_block_writes_over_the_placeholders_only():
    img = 7
    ids = torch.tensor([[1, img, img, img, 5, 6], [1, img, img, img, 9, 9]])
    out = fill_image_block(ids, img, [[20, 21, 22], [30, 31, 32]])
    assert out.tolist() == [[1, 20, 21, 22, 5, 6], [1, 30, 31, 32, 9, 9]]
    assert ids[0, 1:4].tolist() == [img] * 3  # input left as it was


def test_lm_pretraining_learns_and_sft_starts_from_it(synth_dir, tmp_path, sft_config):
    cfg = load_config(LMConfig, None, [
        f"data.train={synth_dir / 'train.jsonl'}", f"output_dir={tmp_path / 'lm'}",
        "max_steps=40", "batch_size=8", "device=cpu", "num_threads=1", "log_every=10",
        *SMALL_MODEL,
    ])  # fmt: skip
    final = run_lm_pretrain(cfg)
    summary = json.loads((final / "training_summary.json").read_text())
    assert (summary["context"], summary["fill"], summary["steps"]) == ("findings", "repeat", 40)
    assert summary["final_loss"] < 0.5 * summary["first_loss"]
    model = Mu2ForConditionalGeneration.from_pretrained(final)
    rows = read_jsonl(synth_dir / "train.jsonl")
    assert summary["rows"] == len([r for r in rows if r.answer.strip()])
    # Only the LLM trained: the visual tokenizer is still the seed's initialisation.
    fresh = build_model(cfg.model, [t for r in rows for t in (r.question, r.answer)], seed=0)
    same = zip(
        model.visual_tokenizer.parameters(), fresh.visual_tokenizer.parameters(), strict=True
    )
    assert all(torch.equal(a, b) for a, b in same)
    llm = zip(model.language_model.parameters(), fresh.language_model.parameters(), strict=True)
    assert not all(torch.equal(a, b) for a, b in llm)
    sft = sft_config(tmp_path / "sft", f"model.init_from={final}", "max_steps=2")
    from mu2.train.sft import run_sft

    out = run_sft(sft)
    assert (out / "model.safetensors").is_file()


def test_code_fill_and_sft_code_loss(synth_dir, tmp_path, sft_config):
    """fill=code trains the LLM on the findings code; SFT from it logs a falling code loss."""
    cfg = load_config(LMConfig, None, [
        f"data.train={synth_dir / 'train.jsonl'}", f"output_dir={tmp_path / 'lm'}",
        "max_steps=30", "batch_size=8", "device=cpu", "num_threads=1", "log_every=10",
        "fill=code", *SMALL_MODEL,
    ])  # fmt: skip
    final = run_lm_pretrain(cfg)
    summary = json.loads((final / "training_summary.json").read_text())
    assert summary["fill"] == "code"
    assert summary["final_loss"] < 0.7 * summary["first_loss"]
    from mu2.train.sft import run_sft

    sft = sft_config(
        tmp_path / "sft", f"model.init_from={final}", "model.freeze_llm=true", "code_weight=1",
        "max_steps=12", "log_every=1", "optim.lr=3e-3",
    )  # fmt: skip
    run_sft(sft)
    logged = [json.loads(line) for line in (tmp_path / "sft" / "metrics.jsonl").open()]
    codes = [row["code"] for row in logged if "code" in row]
    assert len(codes) == 12
    assert sum(codes[-3:]) < sum(codes[:3])


def test_code_weight_needs_structured_findings(synth_dir, tmp_path, sft_config):
    rows = read_jsonl(synth_dir / "train.jsonl")
    bare = tmp_path / "bare.jsonl"
    bare.write_text(
        "".join(
            json.dumps({**r.to_dict(), "findings": [], "image": str(synth_dir / r.image)}) + "\n"
            for r in rows
        )
    )
    from mu2.errors import Mu2Error
    from mu2.train.sft import SFTRecipe

    cfg = sft_config(tmp_path / "sft", f"data.train={bare}", "code_weight=1", "max_steps=1")
    with pytest.raises(Mu2Error, match="structured findings"):
        SFTRecipe(cfg).build()

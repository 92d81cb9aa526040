"""DPO recipe: starts at log 2, moves the policy only, logs rewards; LoRA reference path."""

import math

import pytest
import torch
from accelerate import Accelerator
from safetensors.torch import load_file

from mu2.engine.dataset import Draw
from mu2.engine.logging import read_metrics
from mu2.train.dpo import DPORecipe


def _weights(path):
    return load_file(path / "model.safetensors")


def test_dpo_moves_policy_not_reference(dpo_config, tiny_model_dir, tmp_path):
    # one batch of 2 pairs seen 3 times: the margin on it must grow
    cfg = dpo_config(tmp_path / "dpo", "max_steps=3", "data.limit=2", "optim.lr=3e-4")
    recipe = DPORecipe(cfg)
    final = recipe.run_all()
    train = read_metrics(tmp_path / "dpo" / "metrics.jsonl", "train")
    # policy == reference before the first update: every pair's loss is exactly log 2
    # (up to float32 rounding of log-probs summed over ~50 tokens)
    assert abs(train[0]["loss"] - math.log(2)) < 1e-5
    assert abs(train[0]["reward_margin"]) < 1e-4
    assert {"reward_chosen", "reward_rejected", "reward_accuracy"} <= train[-1].keys()
    assert train[-1]["reward_margin"] > 0.01 and train[-1]["loss"] < train[0]["loss"]
    sft, dpo = _weights(tiny_model_dir), _weights(final)
    changed = [k for k in sft if not torch.equal(sft[k], dpo[k])]
    assert any(k.startswith("language_model") for k in changed)
    assert any(k.startswith("visual_tokenizer") for k in changed)
    assert not any(k.startswith("vision_tower") for k in changed)  # freeze_vision default
    for (
        k,
        v,
    ) in recipe.ref.state_dict().items():  # the reference never moves (tied lm_head: not saved)
        if k not in sft:
            continue
        torch.testing.assert_close(v, sft[k], rtol=0, atol=0)


def test_dpo_with_the_llm_frozen_moves_only_projector_and_tokenizer(
    dpo_config, tiny_model_dir, tmp_path
):
    cfg = dpo_config(
        tmp_path / "dpo", "max_steps=2", "data.limit=2", "optim.lr=3e-4", "model.freeze_llm=true"
    )
    final = DPORecipe(cfg).run_all()
    sft, dpo = _weights(tiny_model_dir), _weights(final)
    changed = {k.split(".")[0] for k in sft if not torch.equal(sft[k], dpo[k])}
    assert changed == {"projector", "visual_tokenizer"}


def test_dpo_with_lora_uses_the_adapter_free_model_as_reference(
    dpo_config, tiny_model_dir, tmp_path
):
    cfg = dpo_config(
        tmp_path / "lora", "max_steps=2", "model.lora.enabled=true", "model.lora.r=4",
        "model.lora.alpha=8", "model.lora.target_modules=[q_proj,v_proj]", "optim.lr=1e-2",
    )  # fmt: skip
    recipe = DPORecipe(cfg)
    final = recipe.run_all()
    assert recipe.ref is None
    train = read_metrics(tmp_path / "lora" / "metrics.jsonl", "train")
    assert abs(train[0]["loss"] - math.log(2)) < 1e-5  # LoRA B starts at zero: policy == base
    assert abs(train[1]["reward_margin"]) > 0
    sft, dpo = _weights(tiny_model_dir), _weights(final)
    lora = [k for k in dpo if "lora_" in k]
    assert lora and any(dpo[k].abs().sum() > 0 for k in lora if "lora_B" in k)
    from mu2.model import Mu2ForConditionalGeneration

    reloaded = Mu2ForConditionalGeneration.from_pretrained(final).state_dict()  # adapters come back
    for k in lora:
        torch.testing.assert_close(reloaded[k], dpo[k], rtol=0, atol=0)
    base_llm = [k for k in sft if k.startswith("language_model")]
    for k in base_llm:  # base LLM weights frozen (saved under PEFT's base_layer names)
        key = k if k in dpo else k.replace(".weight", ".base_layer.weight")
        torch.testing.assert_close(dpo[key], sft[k], rtol=0, atol=0)


def test_pair_batch_shares_one_volume_per_pair(dpo_config, tmp_path):
    recipe = DPORecipe(dpo_config(tmp_path / "x"))
    recipe.accelerator = Accelerator(cpu=True)
    _, train, collate = recipe.build()

    items = [train[Draw(0, 1)], train[Draw(1, 1)]]
    batch = collate(items)
    assert batch["pixel_values"].shape[0] == 4  # [chosen_0, chosen_1, rejected_0, rejected_1]
    assert torch.equal(batch["pixel_values"][0], batch["pixel_values"][2])
    assert torch.equal(batch["pixel_values"][1], batch["pixel_values"][3])
    assert not torch.equal(batch["labels"][0], batch["labels"][2])  # different reports
    assert torch.equal(
        batch["input_ids"][0][batch["labels"][0] == -100][:5], batch["input_ids"][2][:5]
    )


def test_bf16_policy_and_reference_agree_exactly_before_the_first_update(dpo_config, tmp_path):
    """A real bf16 step, gradient checkpointing on (paper config): the reference runs in the
    policy's precision context and attention kernels, so the log-ratio is exactly 0."""
    from accelerate.state import AcceleratorState

    cfg = dpo_config(
        tmp_path / "bf16", "mixed_precision=bf16", "data.limit=2", "max_steps=1",
        "model.gradient_checkpointing=true",
    )  # fmt: skip
    AcceleratorState._reset_state(True)  # earlier tests of this process fixed fp32
    try:
        recipe = DPORecipe(cfg)
        recipe.run_all()
        assert recipe.accelerator.mixed_precision == "bf16"
    finally:
        AcceleratorState._reset_state(True)  # later tests start from a clean state
    first = read_metrics(tmp_path / "bf16" / "metrics.jsonl", "train")[0]
    assert first["reward_chosen"] == first["reward_rejected"] == 0.0, first
    assert first["loss"] == math.log(2) or abs(first["loss"] - math.log(2)) < 1e-7


def test_dpo_loss_options_reach_the_recipe_loss(dpo_config, tmp_path):
    """rpo_alpha / reference_free from the config change the loss on a real pair batch."""
    recipe = DPORecipe(dpo_config(tmp_path / "x", "rpo_alpha=1.0"))
    recipe.accelerator = Accelerator(cpu=True)
    model, train, collate = recipe.build()
    recipe.model = model.eval()
    batch = collate([train[Draw(0, 1)], train[Draw(1, 1)]])
    with torch.no_grad():
        loss, extra = recipe.compute_loss(batch)
    # policy == reference: the DPO part is log 2; the NLL part is -sum(chosen logp) / tokens
    tokens = (batch["labels"][:2, 1:] != -100).sum().item()
    nll = -extra["logp_chosen"].item() * 2 / tokens
    assert nll > 0.1
    assert loss.item() == pytest.approx(math.log(2) + nll, abs=1e-4)
    recipe.cfg.rpo_alpha, recipe.cfg.reference_free = 0.0, True
    with torch.no_grad():
        loss, extra = recipe.compute_loss(batch)
    # without the reference the margin is the policy's own: chosen and rejected differ
    assert abs((extra["logp_chosen"] - extra["logp_rejected"]).item()) > 1e-2
    assert loss.item() != pytest.approx(math.log(2), abs=1e-4)

"""SFT recipe on the tiny model: it learns, logs, decays the LR, saves, and resumes exactly."""

import json

import torch
from safetensors.torch import load_file

from mu2.engine.logging import read_metrics
from mu2.train.sft import SFTRecipe, run_sft


def test_sft_trains_logs_and_saves(sft_config, tmp_path):
    cfg = sft_config(
        tmp_path / "run", "max_steps=6", "optim.warmup_ratio=0.25", "eval_every=3",
        "num_sample_reports=1", "max_new_tokens=4", "tensorboard=true", "save_every=3", "keep_last=1",
    )  # fmt: skip
    recipe = SFTRecipe(cfg)
    recipe.setup()
    before = {k: v.detach().clone() for k, v in recipe.model.named_parameters() if v.requires_grad}
    recipe.train()
    final = recipe.cleanup()

    # parameters changed after training (every trainable part got gradients)
    after = dict(recipe.accelerator.unwrap_model(recipe.model).named_parameters())
    for part in ("vision_tower", "projector", "visual_tokenizer", "language_model"):
        names = [k for k in before if k.startswith(part)]
        assert names and any(not torch.equal(before[k], after[k]) for k in names), part

    train = read_metrics(tmp_path / "run" / "metrics.jsonl", "train")
    assert [r["step"] for r in train] == list(range(1, 7))
    lrs = [r["lr"] for r in train]  # LR after each step: warm-up to the peak, then cosine down
    assert lrs[0] < lrs[1] == max(lrs)  # 2 warm-up steps of 6
    assert all(a > b for a, b in zip(lrs[1:], lrs[2:], strict=False)) and lrs[-1] < 0.01 * max(lrs)
    assert train[-1]["loss"] < train[0]["loss"]
    assert all(r["cases_per_s"] > 0 for r in train)
    val = read_metrics(tmp_path / "run" / "metrics.jsonl", "val")
    assert [r["step"] for r in val] == [3, 6]
    samples = [json.loads(x) for x in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    assert {s["step"] for s in samples} == {3, 6} and all("reference" in s for s in samples)
    assert list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))
    assert [p.name for p in (tmp_path / "run").glob("checkpoint-*")] == ["checkpoint-0000006"]

    assert final == tmp_path / "run" / "final"
    assert (final / "loss_curve.png").stat().st_size > 1000
    summary = json.loads((final / "training_summary.json").read_text())
    assert summary["steps"] == 6 and summary["cases_seen"] == 12
    from mu2.model import Mu2ForConditionalGeneration

    loaded = Mu2ForConditionalGeneration.from_pretrained(final)
    assert loaded.processor is not None
    for k, v in loaded.state_dict().items():
        if k in after:
            torch.testing.assert_close(v, after[k].detach(), rtol=0, atol=0)


def test_resume_continues_exactly(sft_config, tmp_path):
    """Stop mid-epoch (after a checkpoint), resume with resume=auto: same final weights."""
    # 4 cases, batch 1, accumulation 2: 2 optimizer steps per epoch; stop after step 1
    common = ["max_steps=3", "grad_accum=2", "batch_size=1", "data.limit=4", "data.augment=true"]
    full = run_sft(sft_config(tmp_path / "full", *common))
    assert run_sft(sft_config(tmp_path / "cut", *common, "stop_after=1")) is None
    state = json.loads((tmp_path / "cut" / "checkpoint-0000001" / "trainer_state.json").read_text())
    assert (
        state["step"] == 1 and state["epoch"] == 0 and state["batches_in_epoch"] == 2
    )  # mid-epoch
    resumed = run_sft(sft_config(tmp_path / "cut", *common, "resume=auto"))

    a, b = load_file(full / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6)
    # the resumed run's log continues the cut one without duplicated steps
    steps = [r["step"] for r in read_metrics(tmp_path / "cut" / "metrics.jsonl", "train")]
    assert steps == [1, 2, 3]

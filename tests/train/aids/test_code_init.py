"""The least-squares warm start of the projector's output layer: after it, the mean visual
feature of each training case is close to that case's findings code."""

from __future__ import annotations

import torch

from mu2.engine.tower_cache import TowerCache
from mu2.train.aids.code_init import fit_projector_to_code
from mu2.train.aids.findings_code import findings_code


def _uniform_mix_residual(model, dataset, collate, directions) -> float:
    """Code loss of the mean projector token per case (what a uniform mix emits)."""
    batch = collate([dataset[i] for i in range(len(dataset))])
    pv, fm = batch["pixel_values"], batch["frame_mask"].bool()
    with torch.no_grad():
        tokens = model.projector(model.vision_tower(pv[fm][:, None]))  # (F, N, E)
        counts = fm.sum(dim=1).tolist()
        mean = torch.stack([t.mean(dim=(0, 1)) for t in tokens.split(counts)])  # (B, E)
        code = findings_code(directions, batch["code_sign"])
    return ((mean - code).pow(2).mean() / code.pow(2).mean()).item()


def test_fit_brings_the_mean_token_to_the_code(tmp_path, sft_config):
    from mu2.train.sft import SFTRecipe

    cfg = sft_config(tmp_path / "sft", "code_weight=1", "model.freeze_vision=true",
                     "data.augment=false")  # fmt: skip
    recipe = SFTRecipe(cfg)
    model, train, collate = recipe.build()
    model.eval()
    u = recipe.aids[0].directions  # (K, E): the findings-code aid
    before = _uniform_mix_residual(model, train, collate, u)
    cache = TowerCache()
    residual = fit_projector_to_code(model, train, collate, u, rows=len(train), cache=cache)
    after = _uniform_mix_residual(model, train, collate, u)
    assert after < 0.5 * before
    assert abs(after - residual) < 1e-3  # the reported residual is the fit's own
    assert cache.misses > 0  # the tower outputs went through (and into) the cache


def test_sft_runs_the_fit_when_asked(tmp_path, sft_config, caplog):
    from mu2.train.sft import run_sft

    cfg = sft_config(tmp_path / "sft", "code_weight=1", "code_init_rows=4", "max_steps=1",
                     "model.freeze_vision=true", "data.augment=false", "cache_vision=true")  # fmt: skip
    with caplog.at_level("INFO", logger="mu2.train.aids.code_init"):
        run_sft(cfg)
    assert "fitted to the findings code on 4 rows" in caplog.text

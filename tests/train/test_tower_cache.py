"""The frozen-tower cache returns what the tower returns, once per volume, and SFT with it
trains exactly as without it."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from mu2.engine.tower_cache import TowerCache


class CountingTower(nn.Module):
    """(F, 1, K, H, W) -> (F, 4, 3); counts the frames it has seen."""

    def __init__(self, dropout: float = 0.0):
        super().__init__()
        self.proj = nn.Linear(2 * 2 * 2, 3)
        self.drop = nn.Dropout(dropout)
        self.frames_seen = 0

    def forward(self, x):
        self.frames_seen += x.shape[0]
        f = x.shape[0]
        patches = x.reshape(f, 4, 8)  # four patches of 8 voxels (K, H, W = 2, 4, 4)
        return self.drop(self.proj(patches))


def test_cache_matches_the_tower_and_runs_each_volume_once():
    torch.manual_seed(0)
    tower = CountingTower()
    a, b = torch.rand(3, 2, 4, 4), torch.rand(3, 2, 4, 4)
    pv = torch.stack([a, b, a])  # rows 0 and 2 share a scan; (B, T, K, H, W)
    fm = torch.tensor([[True, True, True], [True, True, False], [True, True, True]])
    cache = TowerCache()
    got = cache.patches(tower, pv, fm)  # (F, N0, E_v)
    real = pv[fm][:, None]  # (F, 1, K, H, W)
    assert torch.allclose(got, tower(real))
    assert (cache.misses, cache.hits) == (2, 1)
    tower.frames_seen = 0
    again = cache.patches(tower, pv, fm)
    assert torch.equal(again, got) and tower.frames_seen == 0
    assert (cache.misses, cache.hits) == (2, 4)


def test_cache_refuses_a_tower_with_active_dropout():
    tower = CountingTower(dropout=0.1).train()
    with pytest.raises(ValueError, match="deterministic"):
        TowerCache().patches(tower, torch.rand(1, 1, 2, 4, 4), torch.ones(1, 1, dtype=torch.bool))


def test_cache_vision_needs_a_frozen_tower_and_no_augmentation():
    from mu2.train.config import SFTConfig

    with pytest.raises(ValueError, match="cache_vision"):
        SFTConfig(cache_vision=True)  # tower trainable, augmentation on by default


def test_sft_with_the_cache_trains_exactly_as_without(tmp_path, sft_config):
    from mu2.train.sft import run_sft

    common = ("model.freeze_vision=true", "data.augment=false", "max_steps=6")
    run_sft(sft_config(tmp_path / "plain", *common))
    run_sft(sft_config(tmp_path / "cached", *common, "cache_vision=true"))

    def losses(name):
        rows = [json.loads(line) for line in (tmp_path / name / "metrics.jsonl").open()]
        return [r["loss"] for r in rows if r.get("split") == "train"]

    assert len(losses("plain")) == 6
    assert losses("cached") == pytest.approx(losses("plain"), rel=1e-5)

"""Local model loading holds the Hub client offline and restores its state afterwards."""

from __future__ import annotations

import os

from huggingface_hub import is_offline_mode

from mu2.metrics.offline import hub_offline


def test_hub_offline_sets_and_restores(monkeypatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    before = is_offline_mode()
    with hub_offline():
        assert is_offline_mode() and os.environ["HF_HUB_OFFLINE"] == "1"
    assert is_offline_mode() == before and "HF_HUB_OFFLINE" not in os.environ
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    with hub_offline():
        assert is_offline_mode()
    assert os.environ["HF_HUB_OFFLINE"] == "0"

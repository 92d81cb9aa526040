"""The model card: built from training rows, extended by a later stage, saved and read
back; a model without one is of unknown training data and says so."""

from __future__ import annotations

import json
from pathlib import Path

from mu2.model.card import CARD_FILE, card_from_rows, load_card, save_card

SFT_ROWS = [
    {"region": "chest", "dataset": "synth", "findings": [{"finding": "pleural_effusion"}]},
    {"region": "abdomen", "dataset": "synth", "findings": [{"finding": "ascites"}]},
    {"region": "abdomen", "dataset": "synth", "findings": []},
]


def test_card_from_synthetic_rows_warns() -> None:
    card = card_from_rows(SFT_ROWS, "sft", name="m", data_path="/data/train.jsonl")
    assert card.regions == ["chest", "abdomen"]
    assert card.finding_kinds == ["ascites", "pleural_effusion"]
    assert card.training_data == [
        {"dataset": "synth", "synthetic": True, "rows": 3, "stage": "sft"}
    ]
    assert card.recipe == [{"stage": "sft", "rows": 3, "data": "train.jsonl"}]
    assert card.synthetic_only and "synthetic phantoms only" in card.warning()


def test_a_later_stage_extends_the_card_and_real_data_lift_the_warning() -> None:
    sft = card_from_rows(SFT_ROWS, "sft")
    rows = [{"region": "pelvis", "dataset": "amos-mm", "findings": [{"finding": "ascites"}]}]
    dpo = card_from_rows(rows, "dpo", base=sft)
    assert dpo.regions == ["chest", "abdomen", "pelvis"]
    assert [s["stage"] for s in dpo.recipe] == ["sft", "dpo"]
    assert [d["dataset"] for d in dpo.training_data] == ["synth", "amos-mm"]
    assert not dpo.synthetic_only and dpo.warning() is None
    assert sft.regions == ["chest", "abdomen"]  # the base card is not changed


def test_saved_card_reads_back_and_a_missing_one_is_unknown(tmp_path: Path) -> None:
    card = card_from_rows(SFT_ROWS, "sft", name="m")
    save_card(card, tmp_path)
    back = load_card(tmp_path)
    assert back.to_dict() == card.to_dict() and back.known
    missing = load_card(tmp_path / "elsewhere")
    assert not missing.known and missing.regions is None
    assert missing.warning().startswith("model card missing")
    (tmp_path / CARD_FILE).write_text("{not json")
    assert not load_card(tmp_path).known
    (tmp_path / CARD_FILE).write_text(json.dumps({"name": "x", "regions": ["chest"]}))
    assert load_card(tmp_path).regions == ["chest"]

"""Profiles: ``base`` inheritance, ``set`` lists that add up, stage overrides from the
command line, and the one recipe builder (recipe YAML <- wiring <- ``set``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mu2.errors import Mu2Error
from mu2.recipes.profile import StageSpec, build_recipe, load_profile, stage_overrides
from mu2.train.config import SFTConfig

SHIPPED_SFT = Path(__file__).resolve().parents[2] / "configs" / "sft" / "tiny.yaml"


def test_base_profile_merges_and_set_lists_add_up(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        "seeds: 3\nsft: {recipe: sft/tiny, set: [max_steps=9]}\neval: {bootstrap: 10, cases: 2}\n"
    )
    (tmp_path / "b.yaml").write_text(
        f"base: {tmp_path / 'a.yaml'}\nsft: {{set: [batch_size=2]}}\neval: {{bootstrap: 5}}\n"
    )
    data = load_profile(str(tmp_path / "b.yaml"), "demo")
    assert data["seeds"] == 3 and data["eval"] == {"bootstrap": 5, "cases": 2}
    assert data["sft"] == {"recipe": "sft/tiny", "set": ["max_steps=9", "batch_size=2"]}


def test_a_base_loop_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(f"base: {tmp_path / 'b.yaml'}\n")
    (tmp_path / "b.yaml").write_text(f"base: {tmp_path / 'a.yaml'}\n")
    with pytest.raises(Mu2Error, match="loop"):
        load_profile(str(tmp_path / "a.yaml"), "demo")


def test_stage_keys_go_to_the_stage_set_list() -> None:
    rest, extra = stage_overrides(
        ["sft.steps=3", "sft.optim.lr=0.5", "lm.enabled=false", "eval.bootstrap=2", "sft.set=[]"],
        ("sft", "lm"),
        {"steps": "max_steps"},
    )
    assert extra == {"sft": ["max_steps=3", "optim.lr=0.5"]}
    assert rest == ["lm.enabled=false", "eval.bootstrap=2", "sft.set=[]"]


def test_recipe_then_wiring_then_set() -> None:
    recipe = yaml.safe_load(SHIPPED_SFT.read_text())
    spec = StageSpec("sft/tiny", ["max_steps=7", "model.freeze_llm=false"])
    cfg = build_recipe(SFTConfig, spec, {"max_steps": 5, "output_dir": "x y: z#1", "seed": 4})
    assert cfg.max_steps == 7  # the profile's set wins over the wiring
    assert cfg.output_dir == "x y: z#1" and cfg.seed == 4  # wiring values are taken as given
    assert cfg.model.freeze_llm is False
    assert cfg.optim.lr == recipe["optim"]["lr"] and cfg.batch_size == recipe["batch_size"]

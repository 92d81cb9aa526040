"""Demo profiles, overrides and the summary tables built from metrics files."""

from __future__ import annotations

import pytest

from mu2.config import to_dict
from mu2.config_files import configs_root, list_configs
from mu2.demo.config import DemoConfig, fast_profile, full_profile, make_demo_config
from mu2.demo.summary import (
    TARGET_ACCURACY,
    TARGET_DIFFERS_SHARE,
    metrics_table,
    per_finding_table,
    target_check,
)
from mu2.errors import Mu2Error
from mu2.metrics.green.backends import RULES_LABEL
from mu2.metrics.nlg import DEFAULT_BERTSCORE_LABEL
from mu2.recipes.profile import build_recipe
from mu2.recipes.runner import recipe_class


def _resolved(cfg: DemoConfig, stage: str) -> dict:
    """The stage's recipe config as the demo builds it (recipe YAML <- profile ``set``)."""
    return to_dict(build_recipe(recipe_class(stage), cfg.stage(stage)))


# What `mu2 demo` trains, recorded: an edit of a recipe or profile YAML that changes it
# shows up here. (stage, dotted key) -> (full, fast).
EXPECTED = {
    ("clip", "max_steps"): (320, 3),
    ("clip", "batch_size"): (16, 4),
    ("clip", "optim.lr"): (2e-3, 2e-3),
    ("clip", "optim.weight_decay"): (0.0, 0.0),
    ("clip", "probe.max_train_cases"): (200, 8),
    ("lm", "max_steps"): (640, 40),
    ("lm", "code_scope"): ("region", "region"),
    ("lm", "code_sides"): (True, True),
    ("lm", "code_basis"): ("orthogonal", "orthogonal"),
    ("lm", "batch_size"): (32, 8),
    ("lm", "optim.lr"): (3e-3, 3e-3),
    ("lm", "optim.warmup_ratio"): (0.1, 0.1),
    ("sft", "max_steps"): (650, 4),
    ("sft", "code_scope"): ("region", "region"),
    ("sft", "code_sides"): (True, True),
    ("sft", "code_basis"): ("orthogonal", "orthogonal"),
    ("sft", "code_weight"): (2.0, 2.0),
    ("sft", "ground_weight"): (0.3, 0.3),
    ("sft", "batch_size"): (8, 4),
    ("sft", "optim.lr"): (1e-3, 3e-3),
    ("sft", "ground_target"): (0.15, 0.15),
    ("prefs", "n"): (4, 4),
    ("prefs", "limit"): (480, 6),
    ("dpo", "max_steps"): (30, 1),
    ("dpo", "batch_size"): (8, 2),
    ("dpo", "optim.lr"): (5e-5, 5e-5),
    ("dpo", "model.freeze_llm"): (True, True),
    ("dpo", "data.augment"): (False, False),
}


def _get(values: dict, key: str):
    for part in key.split("."):
        values = values[part]
    return values


@pytest.mark.parametrize(("stage", "key"), sorted(EXPECTED))
def test_profiles_resolve_to_the_recorded_values(stage: str, key: str) -> None:
    full, fast = _resolved(full_profile(), stage), _resolved(fast_profile(), stage)
    assert (_get(full, key), _get(fast, key)) == EXPECTED[stage, key]


def test_profiles_and_overrides() -> None:
    full, fast = full_profile(), fast_profile()
    assert full.model_name == "demo" and fast.model_name != "demo"  # --fast never clobbers
    assert (full.data.n, fast.data.n) == (600, 24)
    assert (full.eval.bootstrap, fast.eval.bootstrap) == (1000, 20)
    cfg = make_demo_config(
        "fast", ["sft.steps=7", "sft.optim.lr=0.5", "ablate_stage0=true", "data.overrides=[a=1]"]
    )
    assert isinstance(cfg, DemoConfig)
    sft = _resolved(cfg, "sft")
    assert (sft["max_steps"], sft["optim"]["lr"], sft["batch_size"]) == (7, 0.5, 4)
    assert cfg.ablate_stage0 and cfg.data.overrides == ["a=1"]
    assert _resolved(cfg, "clip") == _resolved(fast, "clip")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["sft.max_stepz=3"], "did you mean 'max_steps'"),
        (["sft.steps=0"], "max_steps must be"),
        (["prefs.n=1"], "n must be >= 2"),
        (["eval.bootstrapp=3"], "did you mean 'bootstrap'"),
        (["model_name=../x"], "model_name must be a plain folder name"),
    ],
)
def test_bad_overrides_are_one_line_errors(overrides: list[str], message: str) -> None:
    with pytest.raises(Mu2Error, match=message.replace("(", r"\(").replace(")", r"\)")):
        make_demo_config("full", overrides)
    with pytest.raises(Mu2Error, match="unknown demo profile"):
        make_demo_config("huge")


def test_profiles_ship_inside_the_package() -> None:
    """The profiles are found the way the recipe configs are (mu2/configs in a wheel)."""
    shipped = list_configs()
    for name in ("demo/full", "demo/fast"):
        assert shipped[name].parent.parent == configs_root()


def _metrics(acc: float, differs: float) -> dict:
    kinds = {
        k: {"n": 10, "positives": 4, "accuracy": acc, "sensitivity": acc, "specificity": None}
        for k in ("splenomegaly", "renal_cyst")
    }
    return {
        "n": 10,
        "labels": {"green": RULES_LABEL, "bertscore": DEFAULT_BERTSCORE_LABEL, "bleu1": "b"},
        "overall": {"green": 0.25, "bertscore": 0.5, "bleu1": 0.125},
        "per_finding": {
            "kinds": kinds,
            "finding_f1_micro": 0.5,
            "distinct_report_share": differs,
            "differs_from_most_common_share": differs,
        },
    }


def test_target_check_thresholds() -> None:
    kinds = ["splenomegaly", "renal_cyst"]
    assert target_check(_metrics(TARGET_ACCURACY, TARGET_DIFFERS_SHARE), kinds).met
    low = target_check(_metrics(TARGET_ACCURACY - 0.01, TARGET_DIFFERS_SHARE), kinds)
    assert not low.met and len(low.shortfalls) == 2
    assert not target_check(_metrics(1.0, TARGET_DIFFERS_SHARE - 0.01), kinds).met
    assert not target_check(_metrics(1.0, 1.0), [*kinds, "ascites"]).met  # kind not tested
    # with scans asked several regions, the share over scans decides
    scans = _metrics(1.0, TARGET_DIFFERS_SHARE - 0.05)
    scans["per_finding"]["scan_differs_from_most_common_share"] = TARGET_DIFFERS_SHARE
    assert target_check(scans, kinds).met
    scans["per_finding"]["scan_differs_from_most_common_share"] = TARGET_DIFFERS_SHARE - 0.01
    assert target_check(scans, kinds).shortfalls == [
        f"scans differing from the most common {TARGET_DIFFERS_SHARE - 0.01:.3f} < "
        f"{TARGET_DIFFERS_SHARE}"
    ]


def test_tables_label_substitutes_and_show_the_numbers() -> None:
    results = {"SFT": _metrics(0.5, 0.25), "SFT+DPO": _metrics(0.95, 0.9)}
    table = metrics_table(results)
    assert "GREEN (offline rules judge)" in table and "BERTScore (MiniLM-L6 backbone)" in table
    assert "| SFT (n=10) | 0.125 | - | - | - | - | 0.500 | 0.250 |" in table
    pf = per_finding_table(results, ["splenomegaly", "renal_cyst"])
    assert "| splenomegaly | 4/10 | 0.500 | 0.500 | - | 0.950 | 0.950 | - |" in pf
    assert "| SFT | 0.500 | 0.250 | 0.250 | - | not met |" in pf
    assert "| SFT+DPO | 0.500 | 0.900 | 0.900 | - | met |" in pf


def test_vqa_table_rows_and_target() -> None:
    from mu2.demo.summary import TARGET_VQA, vqa_table

    def vqa(acc: float) -> dict:
        score = {"n": 40, "accuracy": acc, "ci": [acc - 0.1, acc], "majority": 0.6}
        return {"types": {"side": score}, "overall": {**score, "n": 120}}

    table = vqa_table({"SFT": {"vqa": vqa(TARGET_VQA)}, "SFT+DPO": {"vqa": vqa(0.85)}})
    assert "| SFT | side | 40 | 0.900 | 0.800-0.900 | 0.600 |" in table
    assert "| SFT+DPO | all | 120 | 0.850 | 0.750-0.850 | 0.600 |" in table
    assert "SFT: target met (all question types 0.900)" in table
    assert "SFT+DPO: below target (all question types 0.850)" in table
    assert vqa_table({"SFT": {"per_finding": {}}}) == ""  # no VQA rows scored: no table

"""configs/{sft,dpo,prefs}/*.yaml load into their dataclasses; paper values are the paper's."""

from pathlib import Path

import pytest

from mu2.config import load_config
from mu2.errors import Mu2Error
from mu2.train.config import DPOConfig, LMConfig, PrefsConfig, SFTConfig

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.mark.parametrize(
    ("cls", "path"),
    [(SFTConfig, p) for p in sorted((CONFIGS / "sft").glob("*.yaml"))]
    + [(DPOConfig, p) for p in sorted((CONFIGS / "dpo").glob("*.yaml"))]
    + [(PrefsConfig, p) for p in sorted((CONFIGS / "prefs").glob("*.yaml"))]
    + [(LMConfig, p) for p in sorted((CONFIGS / "lm").glob("*.yaml"))],
    ids=lambda x: x.name if isinstance(x, Path) else x.__name__,
)
def test_config_files_load(cls, path):
    assert isinstance(load_config(cls, path), cls)


def test_paper_sft_is_the_reference_code_setting():
    cfg = load_config(SFTConfig, CONFIGS / "sft" / "paper.yaml")
    assert (cfg.optim.lr, cfg.epochs, cfg.batch_size, cfg.model.max_length) == (4e-6, 4, 1, 1024)
    assert cfg.mixed_precision == "bf16" and cfg.optim.warmup_ratio == 0.1
    assert cfg.model.size == "paper" and cfg.model.llm_path and cfg.model.vision_path


def test_bad_values_are_user_errors():
    with pytest.raises(Mu2Error, match="did you mean 'batch_size'"):
        load_config(SFTConfig, None, ["batch_sise=2"])
    with pytest.raises(Mu2Error, match="beta must be > 0"):
        load_config(DPOConfig, None, ["beta=0"])
    with pytest.raises(Mu2Error, match="n must be >= 2"):
        load_config(PrefsConfig, None, ["n=1"])
    with pytest.raises(Mu2Error, match="choose one of"):
        load_config(LMConfig, None, ["context=captions"])
    with pytest.raises(Mu2Error, match="needs no text pretraining"):
        load_config(LMConfig, None, ["model.llm_path=/models/llama"])
    with pytest.raises(Mu2Error, match="grad_accum must be >= 1"):
        load_config(SFTConfig, None, ["grad_accum=0"])


def test_paper_configs_prepare_volumes_as_the_m3d_clip_tower_was_pretrained():
    """Per-volume scaling (M3D-Cap's min-max arrays; the reference code's percentiles) in
    every paper stage, so SFT, pairs and DPO see the frames the tower learned on."""
    from mu2.preprocess import prep_config

    sft = load_config(SFTConfig, CONFIGS / "sft" / "paper.yaml")
    dpo = load_config(DPOConfig, CONFIGS / "dpo" / "paper.yaml")
    prefs = load_config(PrefsConfig, CONFIGS / "prefs" / "paper.yaml")
    assert sft.data.prep == dpo.data.prep == prefs.prep
    cfg = prep_config(sft.data.prep)
    assert cfg.scaling == "percentile" and cfg.percentiles == (0.5, 99.5)
    assert (cfg.frame_slices, cfg.size, cfg.max_frames) == (32, 256, 8)
    assert prep_config("paper:window").window_hu == (-160.0, 240.0)  # still an option
    with pytest.raises(Mu2Error, match="unknown intensity scaling"):
        prep_config("paper:soft")


def test_paper_preference_pairs_are_exactly_the_dpo_input():
    sft = load_config(SFTConfig, CONFIGS / "sft" / "paper.yaml")
    dpo = load_config(DPOConfig, CONFIGS / "dpo" / "paper.yaml")
    prefs = load_config(PrefsConfig, CONFIGS / "prefs" / "paper.yaml")
    assert prefs.out == dpo.data.train
    assert prefs.model == dpo.model.sft_model == f"{sft.output_dir}/final"
    assert prefs.data == sft.data.train
    assert (prefs.n, prefs.temperature, prefs.top_p) == (8, 1.0, 0.9)
    assert prefs.max_new_tokens >= 256 and prefs.green_backend.startswith("hf:")


def test_paper_1024_query_variant_budgets_text_and_image_tokens_apart():
    cfg = load_config(SFTConfig, CONFIGS / "sft" / "paper-1024q.yaml")
    assert cfg.model.overrides == {"num_queries": 1024} and cfg.model.max_length == 1024
    base = load_config(SFTConfig, CONFIGS / "sft" / "paper.yaml")
    assert (cfg.optim, cfg.data, cfg.epochs) == (base.optim, base.data, base.epochs)

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

"""Stage-0 config: YAML + overrides, typos and bad values are one clear error."""

import pytest

from mu2.config import load_config
from mu2.errors import Mu2Error
from mu2.pretrain.config import ClipConfig


def test_tiny_yaml_loads_with_overrides():
    cfg = load_config(ClipConfig, "configs/clip/tiny.yaml", ["max_steps=5", "model.pool=mean"])
    assert cfg.max_steps == 5 and cfg.model.pool == "mean" and cfg.model.size == "tiny"
    # partial augmentation overrides keep the findings-preserving defaults
    cfg = load_config(ClipConfig, "configs/clip/tiny.yaml", ["data.augmentation.noise_prob=0.2"])
    aug = cfg.data.augmentation
    assert (
        aug.noise_prob == 0.2 and aug.rot90_prob == 0 and aug.flip_prob == 0 and aug.shift_prob == 0
    )


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ("model.embed_dimm=64", "did you mean 'embed_dim'"),
        ("batch_size=1", "InfoNCE"),
        ("model.text_width=130", "multiple of text_heads"),
        ("model.findings_weight=0", None),
        ("model.pool=attention", "mean"),
        ("model.lesion_weight=-1", "lesion_weight must be >= 0"),
        ("model.lesion_min_share=0", "lesion_min_share must be in"),
        ("model.lesion_min_share=1.5", "lesion_min_share must be in"),
        ("model.lesion_head=conv", "lesion_head"),
        ("model.organ_weight=-0.5", "organ_weight must be >= 0"),
        ("model.organ_weight=1 model.organ_labels=[]", "organ_labels is empty"),
    ],
)
def test_bad_values_are_one_error(override, match):
    if match is None:  # valid on its own
        load_config(ClipConfig, None, override.split())
        return
    with pytest.raises(Mu2Error, match=match):
        load_config(ClipConfig, None, override.split())


def test_nothing_to_learn_is_refused():
    with pytest.raises(Mu2Error, match="nothing to learn"):
        load_config(ClipConfig, None, ["model.findings_weight=0", "model.clip_weight=0"])
    # the lesion target alone is something to learn
    load_config(ClipConfig, None, ["model.findings_weight=0", "model.clip_weight=0",
                                   "model.histogram_weight=0", "model.lesion_weight=1"])  # fmt: skip

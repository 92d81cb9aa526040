"""build(): sizes, presets, overrides, seeds."""

from __future__ import annotations

import pytest
import torch

from mu2.errors import Mu2Error
from mu2.model import build

REPORTS = ["The liver is normal.", "A 12 mm cyst in the left kidney."]


def test_unknown_names_are_user_errors_with_a_suggestion():
    with pytest.raises(Mu2Error, match="did you mean 'linvt'"):
        build("tiny", "linvtt")
    with pytest.raises(Mu2Error, match="unknown model size 'huge'"):
        build("huge")
    with pytest.raises(Mu2Error, match="did you mean 'num_queries'"):
        build("tiny", num_querys=8, train_texts=REPORTS)


def test_overrides_and_config_record_what_was_built():
    model = build("tiny", "linvt+dts", train_texts=REPORTS, num_queries=8)
    assert model.num_image_tokens == 8 == model.processor.num_image_tokens
    cfg = model.config
    assert (cfg.preset, cfg.size, cfg.prep) == ("linvt+dts", "tiny", "tiny")
    tok = cfg.tokenizer()
    assert (tok.rpe, tok.selection, tok.pooling) == ("absolute", "soft", "fixed")


def test_same_seed_same_weights_and_the_global_rng_is_untouched():
    state = torch.get_rng_state()
    a = build("tiny", train_texts=REPORTS, seed=7)
    b = build("tiny", train_texts=REPORTS, seed=7)
    c = build("tiny", train_texts=REPORTS, seed=8)
    assert torch.equal(torch.get_rng_state(), state)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(
        sa["visual_tokenizer.aggregation.queries"], sc["visual_tokenizer.aggregation.queries"]
    )

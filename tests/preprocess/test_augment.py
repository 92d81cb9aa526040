"""augment(): reproducible from the seed, never in place, each transform does what it says."""

from __future__ import annotations

import pytest
import torch

from mu2.errors import Mu2Error
from mu2.preprocess import AugmentConfig, augment

OFF = dict(rot90_prob=0.0, flip_prob=0.0, scale_prob=0.0, shift_prob=0.0, noise_prob=0.0)


def _frames(seed=0):
    return torch.rand((2, 4, 8, 8), generator=torch.Generator().manual_seed(seed))


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def test_same_seed_same_output_different_seed_differs():
    x = _frames()
    cfg = AugmentConfig()
    a = augment(x, cfg, _gen(7))
    b = augment(x, cfg, _gen(7))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    outs = [augment(x, cfg, _gen(s)) for s in range(8)]
    assert any(not torch.equal(outs[0], o) for o in outs[1:])


def test_input_never_modified_and_all_off_is_identity():
    x = _frames()
    keep = x.clone()
    y = augment(x, AugmentConfig(**OFF), _gen(0))
    torch.testing.assert_close(y, keep, rtol=0, atol=0)
    assert y.data_ptr() != x.data_ptr()
    augment(
        x,
        AugmentConfig(rot90_prob=1, flip_prob=1, scale_prob=1, shift_prob=1, noise_prob=1),
        _gen(1),
    )
    torch.testing.assert_close(x, keep, rtol=0, atol=0)


def test_rotation_is_in_plane_by_quarter_turns():
    x = _frames()
    y = augment(x, AugmentConfig(**{**OFF, "rot90_prob": 1.0}), _gen(2))
    flat = x.reshape(8, 8, 8)
    assert any(
        torch.equal(y.reshape(8, 8, 8), torch.rot90(flat, k, dims=(1, 2))) for k in (1, 2, 3)
    )


def test_flips_on_every_axis():
    x = _frames()
    y = augment(x, AugmentConfig(**{**OFF, "flip_prob": 1.0}), _gen(3))
    torch.testing.assert_close(y.reshape(8, 8, 8), torch.flip(x.reshape(8, 8, 8), (0, 1, 2)))


def test_intensity_scale_and_shift_within_bounds():
    x = torch.full((1, 2, 4, 4), 0.5)
    for seed in range(20):
        s = augment(x, AugmentConfig(**{**OFF, "scale_prob": 1.0}), _gen(seed))
        assert torch.allclose(s, s.flatten()[0].expand_as(s))  # one factor for the volume
        assert 0.45 - 1e-6 <= float(s.flatten()[0]) <= 0.55 + 1e-6
        t = augment(x, AugmentConfig(**{**OFF, "shift_prob": 1.0}), _gen(seed))
        assert 0.4 - 1e-6 <= float(t.flatten()[0]) <= 0.6 + 1e-6


def test_noise_level():
    x = torch.zeros((4, 16, 32, 32))
    y = augment(x, AugmentConfig(**{**OFF, "noise_prob": 1.0, "noise_std": 0.05}), _gen(4))
    assert float(y.std()) == pytest.approx(0.05, rel=0.05)


def test_invalid_config_and_shape():
    with pytest.raises(Mu2Error, match="flip_prob"):
        AugmentConfig(flip_prob=1.5)
    with pytest.raises(ValueError, match="T, K, H, W"):
        augment(torch.zeros(4, 8, 8), AugmentConfig(), _gen(0))

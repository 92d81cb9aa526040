"""Text tower: padding must not change a report's embedding."""

import pytest
import torch

from mu2.pretrain.text_encoder import TextEncoder


def test_padding_does_not_change_the_pooled_features():
    torch.manual_seed(0)
    enc = TextEncoder(
        vocab_size=30, width=16, layers=2, heads=2, max_length=12, pad_token_id=0
    ).eval()
    ids = torch.tensor([[5, 6, 7, 8]])
    padded = torch.tensor([[5, 6, 7, 8, 0, 0, 0]])
    a = enc(ids, torch.ones_like(ids))
    b = enc(padded, torch.tensor([[1, 1, 1, 1, 0, 0, 0]]))
    assert a.shape == (1, 16)
    assert torch.allclose(a, b, atol=1e-5)
    # a different report gives different features
    assert not torch.allclose(a, enc(torch.tensor([[9, 6, 7, 8]]), torch.ones(1, 4)), atol=1e-3)


def test_too_long_text_is_refused():
    enc = TextEncoder(vocab_size=30, width=16, layers=1, heads=2, max_length=4)
    with pytest.raises(ValueError, match="max_length"):
        enc(torch.ones(1, 5, dtype=torch.long), torch.ones(1, 5))

"""Standardise token features over the tokens of each case before a softmax scores them.

Frame tokens of one CT share a large common component (the same body, scanner and window
everywhere); what tells the tokens apart is a small deviation from it (measured on the tiny
stage-0 tower: about 0.4 of the refined features' norm). A linear score w . f_i shifts all
tokens of a case by the same w . mean(f), which the softmax ignores, so only the deviation
sets how peaked the softmax is, and a small one leaves DTS and the final aggregation close
to the mean of all tokens. Dividing the deviation by its own RMS makes the initial score
spread independent of how alike a case's tokens are. Written by hand: a masked, per-case
normalisation over a token axis is not a torch or MONAI layer (InstanceNorm has no mask).
"""

from __future__ import annotations

import torch

EPS = 1e-6


def standardize_over_tokens(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """x (B, M, E), mask (B, M) True = real token -> (x - mean) / rms over the real tokens.

    One scalar RMS per case (not per channel), so channels keep their relative scale; padded
    tokens come back as zeros.
    """
    m = mask[..., None].to(x.dtype)  # (B, M, 1)
    count = m.sum(dim=1, keepdim=True).clamp(min=1.0)  # (B, 1, 1)
    mean = (x * m).sum(dim=1, keepdim=True) / count  # (B, 1, E)
    dev = (x - mean) * m  # (B, M, E)
    rms = dev.pow(2).sum(dim=(1, 2), keepdim=True).div(count * x.shape[-1]).sqrt()  # (B, 1, 1)
    return dev / (rms + EPS)  # (B, M, E)

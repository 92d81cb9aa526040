"""What an auxiliary loss of SFT provides: a collate hook and a loss on the visual tokens."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import torch

Collate = Callable[[list[dict[str, Any]]], dict[str, torch.Tensor]]


class AuxiliaryLoss(Protocol):
    """One learning aid of SFT, added to the next-token loss as ``weight * loss``.

    ``collate`` is SFT's collate wrapped so that batches carry what ``loss`` reads;
    ``loss`` gets the batch and the visual encoding (``Mu2ForConditionalGeneration.
    encode_images``: tokens (B, Q, E), mask (B, Q), attribution when
    ``needs_attribution``) and returns a scalar.
    """

    name: str
    weight: float
    needs_attribution: bool
    collate: Collate

    def loss(self, batch: dict[str, Any], encoding: Any) -> torch.Tensor: ...

"""SFT's findings-code loss as an auxiliary loss (``SFTConfig.code_weight``)."""

from __future__ import annotations

from typing import Any

import torch

from mu2.errors import Mu2Error
from mu2.train.aids.code_init import fit_projector_to_code
from mu2.train.aids.findings_code import CodeCollator, FindingsCoder, code_loss, findings_code


class FindingsCodeLoss:
    """SFT's findings-code loss (``code_weight``): every visual token towards its scan's
    equal-weight code, with the projector's optional warm start (``code_init_rows``)."""

    name = "code"
    needs_attribution = False

    def __init__(
        self, cfg: Any, model: Any, rows: list[Any], train: Any, collate: Any, cache: Any = None
    ):
        coder = FindingsCoder(rows, cfg.code_scope, cfg.code_sides, cfg.code_basis)
        if not coder.kinds:
            raise Mu2Error(
                "code_weight > 0 needs rows with structured findings; none has any",
                path=cfg.data.train,
                fix="set code_weight=0",
            )
        self.weight = cfg.code_weight
        self.collate = CodeCollator(collate, coder)
        self.directions = coder.directions(model.config.text_config.hidden_size)  # (K, E)
        if cfg.code_init_rows:
            fit_projector_to_code(
                model, train, self.collate, self.directions, cfg.code_init_rows, cache=cache
            )

    def loss(self, batch: dict[str, Any], encoding: Any) -> torch.Tensor:
        directions = self.directions.to(encoding.tokens.device)  # (K, E)
        code = findings_code(directions, batch["code_sign"])  # (B, E)
        return code_loss(encoding.tokens, code, encoding.mask)  # (B, Q, E), (B, E), (B, Q)

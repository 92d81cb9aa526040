"""The findings code: what an LLM is taught to read in its image block, and what SFT
then asks the visual tokens to be.

For a scan whose training rows report the finding kinds k_1..k_K (all regions), the code is

    c = sum_k w_k s_k u_k / sum_k w_k,   s_k = +1 if the scan has k_k, -1 if not,

with u_k a fixed unit direction per kind (drawn from a generator seeded by the kind's name,
so the LM stage and SFT agree without storing it) and positive weights w_k. The code
describes the scan, not the question: every row of a case (a report per region, VQA rows)
gets the same one, and the LLM learns which signs a question asks about. The LM stage
(``mu2.train.aids.context_lm``, ``fill=code``) writes at every image position such a code with
random weights plus noise, and the LLM learns to write the report from it: the *sign* of
each kind's component, not its size, says present or absent. SFT
(``SFTConfig.code_weight``) pulls every visual token towards the equal-weight code.

Why this form: the μ² tokenizer's outputs are convex mixes of projector tokens (V' = A P S V),
and each projector token sees only its part of the body. Tokens over the spleen can carry
+/- u_spleno, tokens over the liver +/- u_hepato; any positive mix of them keeps every sign,
whatever weights the selection and the aggregation give each region. The next-token loss
through a frozen LLM alone aligns the tokenizer to the LLM too slowly for the demo budget.
Random directions rather than the names' word embeddings: "hepatomegaly" and
"splenomegaly" occur in the same sentence frames, their embeddings end up close, and an LM
stage of the demo's length then confused the two (docs/experiments/2026-11-28-research-log.md).
"""

from __future__ import annotations

import zlib
from typing import Any

import torch

NORMAL_KIND = "normal"  # the one term of a code when the rows report no finding kinds


def _field(row: Any, name: str) -> Any:
    return row.get(name) if isinstance(row, dict) else getattr(row, name, None)


def case_key(row: Any) -> str:
    """The scan a row belongs to: its ``case_id`` (rows of one case share it), else its id."""
    return str(_field(row, "case_id") or _field(row, "id"))


def case_kinds(rows: list[Any]) -> dict[str, set[str]]:
    """Case -> the finding kinds any of its rows reports (a chest row lists only the chest's
    findings; the code needs the whole scan's)."""
    out: dict[str, set[str]] = {}
    for row in rows:
        kinds = out.setdefault(case_key(row), set())
        kinds.update(f["finding"] for f in _field(row, "findings") or [])
    return out


def kind_direction(name: str, width: int) -> torch.Tensor:
    """(width,) unit vector for one finding kind, the same on every run and machine."""
    gen = torch.Generator().manual_seed(zlib.crc32(name.encode()))
    u = torch.randn(width, generator=gen, dtype=torch.float64)
    return (u / u.norm()).float()


class FindingsCoder:
    """Rows -> signs (B, K) over every finding kind of the training rows, and the kinds'
    directions. With no kinds at all, one "normal" term of sign +1."""

    def __init__(self, rows: list[Any]):
        self.cases = case_kinds(rows)
        kinds = sorted(set().union(*self.cases.values())) if self.cases else []
        self.kinds = kinds
        self.names = kinds or [NORMAL_KIND]

    def directions(self, width: int) -> torch.Tensor:
        """(K, width): u_k per kind, in ``self.names`` order."""
        return torch.stack([kind_direction(name, width) for name in self.names])

    def signs(self, rows: list[Any]) -> torch.Tensor:
        """(B, K): +1 where the row's scan has the kind, -1 where not."""
        out = torch.ones(len(rows), len(self.names))
        if not self.kinds:
            return out
        for i, row in enumerate(rows):
            present = self.cases.get(case_key(row))
            if present is None:  # a row from outside the training rows: its own findings
                present = {f["finding"] for f in _field(row, "findings") or []}
            out[i] = torch.tensor([1.0 if k in present else -1.0 for k in self.kinds])
        return out


def findings_code(directions: torch.Tensor, signs: torch.Tensor) -> torch.Tensor:
    """directions (K, E), signs (B, K) -> (B, E): the equal-weight code, mean of s_k u_k."""
    return signs.to(directions) @ directions / signs.shape[1]  # (B, E)


def code_block(
    directions: torch.Tensor,
    signs: torch.Tensor,
    size: int,
    noise: float,
    low: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """(B, size, E): at every position a code with its own random weights w_k ~ U(low, 1),
    plus Gaussian noise of ``noise`` times the equal-weight code's RMS."""
    b, k = signs.shape
    dim = directions.shape[1]
    w = low + (1.0 - low) * torch.rand((b, size, k), generator=generator)  # (B, size, K)
    w = (w / w.sum(dim=-1, keepdim=True)).to(directions)  # (B, size, K)
    block = torch.einsum("bqk,bk,ke->bqe", w, signs.to(directions), directions)  # (B, size, E)
    rms = findings_code(directions, signs).pow(2).mean(dim=-1).sqrt()[:, None, None]  # (B,1,1)
    eps = torch.randn((b, size, dim), generator=generator).to(directions)
    return block + noise * rms * eps  # (B, size, E)


def code_loss(
    tokens: torch.Tensor, code: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """tokens (B, Q, E), code (B, E), mask (B, Q) True = a real token (the spp baseline pads
    frames) -> mean squared distance over the real tokens and channels, divided by the
    code's mean square (scale-free: 1.0 for all-zero tokens)."""
    err = (tokens.float() - code[:, None].float()).pow(2).mean(dim=-1)  # (B, Q)
    if mask is None:
        mask = torch.ones_like(err, dtype=torch.bool)
    m = mask.to(err.dtype)
    return (err * m).sum() / m.sum().clamp(min=1.0) / code.float().pow(2).mean().clamp(min=1e-12)


class CodeCollator:
    """Wraps a collator: adds ``code_sign`` (B, K), each row's signs (:class:`FindingsCoder`)."""

    def __init__(self, collate: Any, coder: FindingsCoder):
        self.collate = collate
        self.coder = coder

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        batch = self.collate(items)
        batch["code_sign"] = self.coder.signs(items)
        return batch


class FindingsCodeLoss:
    """SFT's findings-code loss (``code_weight``): every visual token towards its scan's
    equal-weight code, with the projector's optional warm start (``code_init_rows``)."""

    name = "code"
    needs_attribution = False

    def __init__(
        self, cfg: Any, model: Any, rows: list[Any], train: Any, collate: Any, cache: Any = None
    ):
        from mu2.errors import Mu2Error

        coder = FindingsCoder(rows)
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
            from mu2.train.aids.code_init import fit_projector_to_code

            fit_projector_to_code(
                model, train, self.collate, self.directions, cfg.code_init_rows, cache=cache
            )

    def loss(self, batch: dict[str, Any], encoding: Any) -> torch.Tensor:
        directions = self.directions.to(encoding.tokens.device)  # (K, E)
        code = findings_code(directions, batch["code_sign"])  # (B, E)
        return code_loss(encoding.tokens, code, encoding.mask)  # (B, Q, E), (B, E), (B, Q)

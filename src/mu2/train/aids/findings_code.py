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
Random directions of width 128 still overlap by chance (cosine 0.13 between ascites and
splenomegaly), and the demo model's false splenomegaly calls all came with ascites;
``code_basis=orthogonal`` takes the terms from one fixed orthonormal basis instead.

**Region scope** (``code_scope="region"`` in ``LMConfig`` and ``SFTConfig``; default
``"case"``, the code above). A scan-wide code is the same for every row of a case, so the
tokenizer's question-conditioned aggregation has no reason to depend on the question: the
demo's heat maps of a chest and an abdomen question were identical. With the region scope a
row's code keeps only the kinds of the row's ``region`` (a VQA row's region is the asked
kind's), s_k = 0 for the others, and the mean runs over the kept kinds. The convex-mix
argument still holds within a region: tokens over the chest carry +/- the chest kinds only,
and any positive mix of them keeps those signs and has no abdominal component. What it adds:
the projector is blind to the question, so a chest and an abdomen question of one scan can
reach their different codes only by the aggregation mixing different projector tokens,
the chest's tokens for the chest question. A row without a region, or whose region has no
kind among the training rows, keeps the scan-wide code.

**Sides** (``code_sides=true`` in ``LMConfig`` and ``SFTConfig``; default off). The terms
above say present or absent, never where: an LLM that reads them cannot write "left" or
"right", nor answer a side question. With sides on, each lateral kind (pleural effusion,
lung nodule, ...) adds two terms, ``<kind>@left`` and ``<kind>@right``, signed +1 when the
scan has the kind on that side (both for a bilateral finding) and -1 otherwise; they
belong to the kind's region. The convex-mix argument holds for them as for the kinds:
tokens over the left hemithorax can carry +u_left.
"""

from __future__ import annotations

import functools
import zlib
from typing import Any

import torch

from mu2.errors import Mu2Error
from mu2.findings.catalogue import FINDING_KINDS
from mu2.train.config import CODE_BASES, CODE_SCOPES

NORMAL_KIND = "normal"  # the one term of a code when the rows report no finding kinds
SIDE_MARK = "@"  # a side term is "<kind>@left" / "<kind>@right"
TERM_SIDES: tuple[str, str] = ("left", "right")  # the sides a side term names


def _field(row: Any, name: str) -> Any:
    return row.get(name) if isinstance(row, dict) else getattr(row, name, None)


def case_key(row: Any) -> str:
    """The scan a row belongs to: its ``case_id`` (rows of one case share it), else its id."""
    return str(_field(row, "case_id") or _field(row, "id"))


def finding_terms(finding: dict[str, Any], sides: bool = False) -> set[str]:
    """The code terms one finding makes present: its kind, and with ``sides`` its side
    terms (``<kind>@left`` / ``@right``; both for bilateral) when the kind is lateral."""
    name = finding["finding"]
    terms = {name}
    known = FINDING_KINDS.get(name)
    side = finding.get("side")
    if sides and known is not None and known.lateral and side in (*TERM_SIDES, "bilateral"):
        hit = TERM_SIDES if side == "bilateral" else (side,)
        terms |= {f"{name}{SIDE_MARK}{s}" for s in hit}
    return terms


def case_kinds(rows: list[Any], sides: bool = False) -> dict[str, set[str]]:
    """Case -> the code terms any of its rows reports: the finding kinds (a chest row lists
    only the chest's findings; the code needs the whole scan's) and, with ``sides``, the
    side terms of the lateral ones."""
    out: dict[str, set[str]] = {}
    for row in rows:
        kinds = out.setdefault(case_key(row), set())
        for f in _field(row, "findings") or []:
            kinds |= finding_terms(f, sides)
    return out


def code_terms() -> list[str]:
    """Every term a code can hold, in a fixed order: the catalogue's kinds, the side terms
    of its lateral kinds, and the "normal" term (the orthogonal basis's column order)."""
    sides = [f"{k.name}{SIDE_MARK}{s}" for k in FINDING_KINDS.values() if k.lateral
             for s in TERM_SIDES]  # fmt: skip
    return [*FINDING_KINDS, *sides, NORMAL_KIND]


@functools.cache
def _orthonormal(width: int) -> torch.Tensor:
    """(width, width) orthonormal matrix from a fixed seed (QR of a Gaussian draw)."""
    gen = torch.Generator().manual_seed(0)
    q, r = torch.linalg.qr(torch.randn(width, width, generator=gen, dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r))  # (width, width), a unique QR: columns fixed


def kind_direction(name: str, width: int, basis: str = "random") -> torch.Tensor:
    """(width,) unit vector for one code term, the same on every run and machine.

    ``random``: a unit vector drawn from the term's own seed. ``orthogonal``: the term's
    column of one fixed orthonormal basis, so every two terms are exactly orthogonal and a
    sign is read without the others leaking in; a term outside :func:`code_terms`, or a
    width below their number, falls back to the random vector."""
    if basis not in CODE_BASES:
        raise Mu2Error(f"code_basis={basis!r}", fix=f"use one of {list(CODE_BASES)}")
    terms = code_terms()
    if basis == "orthogonal" and name in terms and len(terms) <= width:
        return _orthonormal(width)[:, terms.index(name)].float()
    gen = torch.Generator().manual_seed(zlib.crc32(name.encode()))
    u = torch.randn(width, generator=gen, dtype=torch.float64)
    return (u / u.norm()).float()


def kind_region(name: str) -> str | None:
    """The body region of a code term's finding kind (the catalogue's), None for a kind it
    lacks."""
    known = FINDING_KINDS.get(name.split(SIDE_MARK)[0])
    return known.region if known is not None else None


class FindingsCoder:
    """Rows -> signs (B, K) over every finding kind of the training rows, and the kinds'
    directions. With no kinds at all, one "normal" term of sign +1. ``scope="region"``: a
    row's signs are 0 on the kinds outside its region; ``sides``: the lateral kinds add a
    left and a right term (module docstring)."""

    def __init__(
        self, rows: list[Any], scope: str = "case", sides: bool = False, basis: str = "random"
    ):
        if scope not in CODE_SCOPES:
            raise Mu2Error(f"code_scope={scope!r}", fix=f"use one of {list(CODE_SCOPES)}")
        if basis not in CODE_BASES:
            raise Mu2Error(f"code_basis={basis!r}", fix=f"use one of {list(CODE_BASES)}")
        self.scope = scope
        self.basis = basis
        self.sides = sides
        self.cases = case_kinds(rows, sides)
        kinds = set().union(*self.cases.values()) if self.cases else set()
        if sides:  # both side terms of every lateral kind seen, whichever sides were drawn
            known = [FINDING_KINDS.get(k) for k in kinds]
            lateral = [k.name for k in known if k is not None and k.lateral]
            kinds |= {f"{k}{SIDE_MARK}{s}" for k in lateral for s in TERM_SIDES}
        kinds = sorted(kinds)
        self.kinds = kinds
        self.names = kinds or [NORMAL_KIND]
        self.regions = [kind_region(k) for k in kinds]  # (K,) region of each kind

    def in_scope(self, row: Any) -> torch.Tensor:
        """(K,) 1.0 for the kinds the row's code covers: all for the case scope, a row
        without a region, or a region with no kind here; else its region's kinds."""
        every = torch.ones(len(self.names))
        region = _field(row, "region")
        if self.scope == "case" or not self.kinds or region is None:
            return every
        keep = torch.tensor([1.0 if r == region else 0.0 for r in self.regions])
        return keep if keep.any() else every

    def directions(self, width: int) -> torch.Tensor:
        """(K, width): u_k per kind, in ``self.names`` order."""
        return torch.stack([kind_direction(name, width, self.basis) for name in self.names])

    def signs(self, rows: list[Any]) -> torch.Tensor:
        """(B, K): +1 where the row's scan has the kind, -1 where not."""
        out = torch.ones(len(rows), len(self.names))
        if not self.kinds:
            return out
        for i, row in enumerate(rows):
            present = self.cases.get(case_key(row))
            if present is None:  # a row from outside the training rows: its own findings
                findings = _field(row, "findings") or []
                present = set().union(*(finding_terms(f, self.sides) for f in findings))
            signs = torch.tensor([1.0 if k in present else -1.0 for k in self.kinds])
            out[i] = signs * self.in_scope(row)  # 0 outside the row's scope
        return out


def findings_code(directions: torch.Tensor, signs: torch.Tensor) -> torch.Tensor:
    """directions (K, E), signs (B, K) -> (B, E): the equal-weight code, mean of s_k u_k
    over the kinds in the row's scope (s_k != 0; all K for the case scope)."""
    s = signs.to(directions)  # (B, K)
    count = s.abs().sum(dim=1, keepdim=True).clamp(min=1.0)  # (B, 1) kinds in scope
    return s @ directions / count  # (B, E)


def code_block(
    directions: torch.Tensor,
    signs: torch.Tensor,
    size: int,
    noise: float,
    low: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """(B, size, E): at every position a code with its own random weights w_k ~ U(low, 1)
    over the kinds in scope (s_k != 0), plus Gaussian noise of ``noise`` times the
    equal-weight code's RMS."""
    b, k = signs.shape
    dim = directions.shape[1]
    w = low + (1.0 - low) * torch.rand((b, size, k), generator=generator)  # (B, size, K)
    w = w * signs.abs()[:, None, :]  # (B, size, K): no weight outside the scope
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


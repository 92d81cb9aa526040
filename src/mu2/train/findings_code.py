"""The findings code: what an LLM is taught to read in its image block, and what SFT
then asks the visual tokens to be.

For a row of region r whose training data report the finding kinds k_1..k_K, the code is

    c = sum_k w_k s_k e_k / sum_k w_k,   s_k = +1 if the row has k_k, -1 if not,

with e_k the mean embedding of the kind's name ("splenomegaly") and positive weights w_k.
The LM stage (``mu2.train.context_lm``, ``fill=code``) writes at every image position such
a code with random weights plus noise, and the LLM learns to write the report from it: the
*sign* of each kind's component, not its size, says present or absent. SFT
(``SFTConfig.code_weight``) pulls every visual token towards the equal-weight code.

Why this form: the μ² tokenizer's outputs are convex mixes of projector tokens (V' = A P S V),
and each projector token sees only its part of the body. Tokens over the spleen can carry
+/- e_spleno, tokens over the liver +/- e_hepato; any positive mix of them keeps every sign,
whatever weights the selection and the aggregation give each region. The next-token loss
through a frozen LLM alone aligns the tokenizer to the LLM too slowly for the demo budget
(BENCHMARKS.md, issue 10).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from mu2.findings.catalogue import FINDING_KINDS

NORMAL_WORD = "normal"  # the context of a row without findings
CONTEXT_SEPARATOR = ", "  # between the findings, and between repeats of the block


def findings_words(findings: list[dict]) -> str:
    """Structured findings -> their names as words, sorted ("normal" for none)."""
    names = sorted({f["finding"].replace("_", " ") for f in findings})
    return CONTEXT_SEPARATOR.join(names) or NORMAL_WORD


def region_kinds(rows: list[Any]) -> dict[str, list[str]]:
    """Region -> the finding kinds (sorted) that the rows of that region report.

    A kind counts for a region when the catalogue puts it there or a row of that region
    reports it; rows are records or dicts with ``region`` and ``findings``."""
    kinds: dict[str, set[str]] = {}
    for row in rows:
        region = row["region"] if isinstance(row, dict) else row.region
        findings = row["findings"] if isinstance(row, dict) else row.findings
        for f in findings or []:
            kind = FINDING_KINDS.get(f["finding"])
            kinds.setdefault(kind.region if kind else region, set()).add(f["finding"])
    return {region: sorted(names) for region, names in kinds.items() if region}


@dataclass
class CodeTerms:
    """A batch of codes as padded terms: ids, mask (B, K, W) of each kind's name tokens,
    sign (B, K): +1 present, -1 absent, 0 padding."""

    ids: torch.Tensor
    mask: torch.Tensor
    sign: torch.Tensor


class FindingsCoder:
    """Rows -> :class:`CodeTerms`, for a fixed tokenizer and region -> kinds map.

    Names are tokenised with a leading space, the form they take inside a report sentence:
    a byte-level BPE splits a string-initial "splenomegaly" into rare pieces whose
    embeddings barely train, and a code built from those is read poorly (measured)."""

    def __init__(self, tokenizer: Any, kinds: dict[str, list[str]]):
        self.kinds = kinds

        def ids(name: str) -> list[int]:
            return tokenizer(" " + name.replace("_", " "), add_special_tokens=False)["input_ids"]

        self.name_ids = {k: ids(k) for names in kinds.values() for k in names}
        self.normal_ids = ids(NORMAL_WORD)

    def terms(self, region: str | None, findings: list[dict]) -> list[tuple[list[int], float]]:
        """One row -> [(name token ids, sign)] over its region's kinds ("normal" if none)."""
        kinds = self.kinds.get(region or "", [])
        if not kinds:
            return [(self.normal_ids, 1.0)]
        present = {f["finding"] for f in findings}
        return [(self.name_ids[k], 1.0 if k in present else -1.0) for k in kinds]

    def batch(self, rows: list[tuple[str | None, list[dict]]]) -> CodeTerms:
        """[(region, findings)] -> padded :class:`CodeTerms`."""
        terms = [self.terms(region, findings) for region, findings in rows]
        k = max(len(t) for t in terms)
        w = max(len(ids) for t in terms for ids, _ in t)
        out = CodeTerms(
            ids=torch.zeros(len(terms), k, w, dtype=torch.long),  # (B, K, W)
            mask=torch.zeros(len(terms), k, w, dtype=torch.bool),  # (B, K, W)
            sign=torch.zeros(len(terms), k),  # (B, K)
        )
        for row, row_terms in enumerate(terms):
            for j, (ids, sign) in enumerate(row_terms):
                out.ids[row, j, : len(ids)] = torch.tensor(ids)
                out.mask[row, j, : len(ids)] = True
                out.sign[row, j] = sign
        return out


def term_embeddings(embedding: torch.nn.Embedding, terms: CodeTerms) -> torch.Tensor:
    """(B, K, E): each kind's name as the mean of its token embeddings."""
    device = embedding.weight.device
    emb = embedding(terms.ids.to(device))  # (B, K, W, E)
    m = terms.mask.to(device)[..., None].to(emb.dtype)  # (B, K, W, 1)
    return (emb * m).sum(dim=2) / m.sum(dim=2).clamp(min=1.0)  # (B, K, E)


def findings_code(embedding: torch.nn.Embedding, terms: CodeTerms) -> torch.Tensor:
    """(B, E): the equal-weight code, the mean over the region's kinds of s_k e_k."""
    e = term_embeddings(embedding, terms)  # (B, K, E)
    sign = terms.sign.to(e.device, e.dtype)  # (B, K)
    return (sign[..., None] * e).sum(dim=1) / sign.abs().sum(dim=1, keepdim=True)  # (B, E)


def code_block(
    embedding: torch.nn.Embedding,
    terms: CodeTerms,
    size: int,
    noise: float,
    low: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """(B, size, E): at every position a code with its own random weights w_k ~ U(low, 1),
    plus Gaussian noise of ``noise`` times the equal-weight code's RMS."""
    e = term_embeddings(embedding, terms)  # (B, K, E)
    sign = terms.sign.to(e.device, e.dtype)  # (B, K)
    b, k, dim = e.shape
    w = low + (1.0 - low) * torch.rand((b, size, k), generator=generator)  # (B, size, K)
    w = w.to(e.device, e.dtype) * sign.abs()[:, None]  # padding terms weigh 0
    w = w / w.sum(dim=-1, keepdim=True)  # (B, size, K)
    block = torch.einsum("bqk,bk,bke->bqe", w, sign, e)  # (B, size, E)
    rms = findings_code(embedding, terms).pow(2).mean(dim=-1).sqrt()[:, None, None]  # (B, 1, 1)
    eps = torch.randn((b, size, dim), generator=generator).to(e.device, e.dtype)
    return block + noise * rms * eps  # (B, size, E)


def code_loss(tokens: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
    """tokens (B, Q, E), code (B, E) -> mean squared distance over tokens and channels,
    divided by the code's mean square (scale-free: 1.0 for all-zero tokens)."""
    err = (tokens.float() - code[:, None].float()).pow(2).mean()
    return err / code.float().pow(2).mean().clamp(min=1e-12)


class CodeCollator:
    """Wraps a collator: adds ``code_ids``, ``code_mask`` (B, K, W) and ``code_sign``
    (B, K), each row's :class:`CodeTerms`."""

    def __init__(self, collate: Any, coder: FindingsCoder):
        self.collate = collate
        self.coder = coder

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        batch = self.collate(items)
        terms = self.coder.batch([(it.get("region"), it.get("findings") or []) for it in items])
        batch["code_ids"], batch["code_mask"], batch["code_sign"] = (
            terms.ids,
            terms.mask,
            terms.sign,
        )
        return batch

"""The findings code: signs per kind of the row's region, a mix that keeps every sign,
and the loss and collator SFT uses."""

from __future__ import annotations

import pytest
import torch

from mu2.train.findings_code import (
    CodeCollator,
    FindingsCoder,
    code_block,
    code_loss,
    findings_code,
    region_kinds,
    term_embeddings,
)


class WordTokenizer:
    """One id per word (ids from 1), like a word-level vocabulary: enough to test the code."""

    def __init__(self):
        self.vocab: dict[str, int] = {}

    def __call__(self, text, add_special_tokens=False):
        ids = [self.vocab.setdefault(w, len(self.vocab) + 1) for w in text.split()]
        return {"input_ids": ids}


ROWS = [
    {"region": "abdomen", "findings": [{"finding": "hepatomegaly"}, {"finding": "ascites"}]},
    {"region": "abdomen", "findings": [{"finding": "splenomegaly"}]},
    {"region": "chest", "findings": [{"finding": "pleural_effusion"}]},
    {"region": "chest", "findings": []},
]


def test_region_kinds_groups_the_reported_kinds_by_region():
    assert region_kinds(ROWS) == {
        "abdomen": ["ascites", "hepatomegaly", "splenomegaly"],
        "chest": ["pleural_effusion"],
    }
    assert region_kinds([{"region": "chest", "findings": []}]) == {}


def test_terms_sign_every_kind_of_the_region_and_fall_back_to_normal():
    coder = FindingsCoder(WordTokenizer(), region_kinds(ROWS))
    signs = [s for _, s in coder.terms("abdomen", ROWS[0]["findings"])]
    assert signs == [1.0, 1.0, -1.0]  # ascites, hepatomegaly present; splenomegaly absent
    assert [s for _, s in coder.terms("chest", [])] == [-1.0]
    (ids, sign), *rest = coder.terms("pelvis", [])  # a region without kinds
    assert not rest and sign == 1.0 and ids == coder.normal_ids
    # multi-word names become several tokens of one term
    assert len(coder.name_ids["pleural_effusion"]) == 2


def _one_hot_embedding(n: int) -> torch.nn.Embedding:
    emb = torch.nn.Embedding(n, n)
    emb.weight.data = torch.eye(n)
    return emb


def test_code_is_the_signed_mean_and_the_mix_keeps_every_sign():
    tok = WordTokenizer()
    coder = FindingsCoder(tok, region_kinds(ROWS))
    emb = _one_hot_embedding(len(tok.vocab) + 1)
    terms = coder.batch([("abdomen", ROWS[0]["findings"]), ("chest", [])])
    assert terms.ids.shape[:2] == (2, 3) and terms.sign.tolist()[1] == [-1.0, 0.0, 0.0]
    e = term_embeddings(emb, terms)  # (B, K, E)
    code = findings_code(emb, terms)  # (B, E)
    expected = (e[0, 0] + e[0, 1] - e[0, 2]) / 3
    assert torch.allclose(code[0], expected)
    pe = coder.name_ids["pleural_effusion"]
    assert torch.allclose(code[1, pe], torch.full((2,), -0.5))  # two words, mean of their rows
    block = code_block(emb, terms, size=5, noise=0.0, low=0.25, generator=torch.Generator())
    assert block.shape == (2, 5, emb.embedding_dim)
    for k in range(3):  # the component along each kind's direction has the kind's sign
        along = torch.einsum("qe,e->q", block[0], e[0, k])
        assert bool((torch.sign(along) == terms.sign[0, k]).all())
    mixes = torch.einsum("qe,ke->qk", block[0], e[0])  # weights differ between positions
    assert not torch.allclose(mixes[0], mixes[1])
    noisy = code_block(emb, terms, size=5, noise=0.5, low=0.25, generator=torch.Generator())
    assert not torch.allclose(noisy, block)


def test_code_loss_is_zero_at_the_code_and_one_for_zero_tokens():
    code = torch.randn(3, 8)
    assert code_loss(code[:, None].expand(3, 4, 8), code).item() == pytest.approx(0.0)
    assert code_loss(torch.zeros(3, 4, 8), code).item() == pytest.approx(1.0)


def test_collator_adds_each_rows_terms():
    coder = FindingsCoder(WordTokenizer(), region_kinds(ROWS))
    collate = CodeCollator(lambda items: {"n": len(items)}, coder)
    batch = collate([{**r, "frames": None} for r in ROWS[:3]])
    assert batch["n"] == 3
    assert batch["code_ids"].shape[:2] == batch["code_sign"].shape == (3, 3)
    assert batch["code_mask"].dtype == torch.bool
    assert batch["code_sign"][2].tolist() == [1.0, 0.0, 0.0]

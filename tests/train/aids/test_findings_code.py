"""The findings code: a sign per finding kind of the scan, fixed directions, a mix that keeps
every sign, and the loss and collator SFT uses."""

from __future__ import annotations

import pytest
import torch

from mu2.train.aids.findings_code import (
    CodeCollator,
    FindingsCoder,
    case_kinds,
    code_block,
    code_loss,
    findings_code,
    kind_direction,
)

ROWS = [  # two scans, each with a chest and an abdomen row
    {"case_id": "a", "id": "a-abd", "region": "abdomen",
     "findings": [{"finding": "hepatomegaly"}, {"finding": "ascites"}]},
    {"case_id": "a", "id": "a-chest", "region": "chest", "findings": []},
    {"case_id": "b", "id": "b-abd", "region": "abdomen", "findings": [{"finding": "splenomegaly"}]},
    {"case_id": "b", "id": "b-chest", "region": "chest",
     "findings": [{"finding": "pleural_effusion"}]},
]  # fmt: skip


def test_case_kinds_gather_the_findings_of_every_row_of_a_scan():
    assert case_kinds(ROWS) == {"a": {"hepatomegaly", "ascites"},
                                "b": {"splenomegaly", "pleural_effusion"}}  # fmt: skip
    assert case_kinds([{"id": "x", "findings": []}]) == {"x": set()}  # no case_id: the row


def test_signs_cover_every_kind_for_the_whole_scan_and_fall_back_to_normal():
    coder = FindingsCoder(ROWS)
    assert coder.kinds == ["ascites", "hepatomegaly", "pleural_effusion", "splenomegaly"]
    signs = coder.signs(ROWS)  # (B, K)
    assert signs[1].tolist() == [1.0, 1.0, -1.0, -1.0]  # the chest row carries the scan's code
    assert torch.equal(signs[0], signs[1]) and torch.equal(signs[2], signs[3])
    unseen = {"id": "new", "findings": [{"finding": "ascites"}]}  # not a training row
    assert coder.signs([unseen]).tolist() == [[1.0, -1.0, -1.0, -1.0]]
    bare = FindingsCoder([{"id": "x", "findings": []}])  # no kinds at all: one "normal" term
    assert bare.names == ["normal"] and bare.signs([{"id": "x"}]).tolist() == [[1.0]]


def test_directions_are_fixed_unit_vectors_per_kind():
    a, b = kind_direction("splenomegaly", 64), kind_direction("hepatomegaly", 64)
    assert torch.equal(a, kind_direction("splenomegaly", 64))  # same on every call
    assert a.norm().item() == pytest.approx(1.0) and abs(float(a @ b)) < 0.5
    assert FindingsCoder(ROWS).directions(64).shape == (4, 64)


def test_code_is_the_signed_mean_and_the_mix_keeps_every_sign():
    coder = FindingsCoder(ROWS)
    u = torch.eye(4, 16)  # orthonormal directions, easy to read back
    signs = coder.signs([ROWS[0], ROWS[3]])  # (B, K)
    code = findings_code(u, signs)  # (B, E)
    assert torch.allclose(code[0, :4], torch.tensor([1.0, 1.0, -1.0, -1.0]) / 4)
    block = code_block(u, signs, size=5, noise=0.0, low=0.25, generator=torch.Generator())
    assert block.shape == (2, 5, 16)
    assert torch.equal(torch.sign(block[..., :4]), signs[:, None].expand(2, 5, 4))
    assert not torch.allclose(block[0, 0], block[0, 1])  # each position has its own weights
    noisy = code_block(u, signs, size=5, noise=0.5, low=0.25, generator=torch.Generator())
    assert not torch.allclose(noisy, block)


def test_code_loss_is_zero_at_the_code_and_one_for_zero_tokens():
    code = torch.randn(3, 8)
    assert code_loss(code[:, None].expand(3, 4, 8), code).item() == pytest.approx(0.0)
    assert code_loss(torch.zeros(3, 4, 8), code).item() == pytest.approx(1.0)
    tokens = code[:, None].repeat(1, 4, 1)
    tokens[:, 3] = 0.0  # a padded token, masked out
    mask = torch.tensor([[True, True, True, False]] * 3)
    assert code_loss(tokens, code, mask).item() == pytest.approx(0.0)
    assert code_loss(tokens, code).item() == pytest.approx(0.25)


def test_collator_adds_each_rows_signs():
    collate = CodeCollator(lambda items: {"n": len(items)}, FindingsCoder(ROWS))
    batch = collate([{**r, "frames": None} for r in ROWS[:3]])
    assert batch["n"] == 3
    assert batch["code_sign"].tolist()[2] == [-1.0, -1.0, 1.0, 1.0]

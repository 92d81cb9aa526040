"""Side terms of the findings code (``code_sides=true``): a lateral kind adds a left and a
right term, so the visual tokens (and the LLM that reads them) say where a finding is;
the LM stage and SFT build them from the real data rows."""

from __future__ import annotations

import torch

from mu2.train.aids.findings_code import FindingsCoder

from ..conftest import build_code_lm

ROWS = [
    {"case_id": "a", "id": "a-chest", "region": "chest",
     "findings": [{"finding": "pleural_effusion", "side": "left"}]},
    {"case_id": "a", "id": "a-abd", "region": "abdomen", "findings": [{"finding": "ascites"}]},
    {"case_id": "b", "id": "b-chest", "region": "chest",
     "findings": [{"finding": "pleural_effusion", "side": "bilateral"}]},
    {"case_id": "c", "id": "c-chest", "region": "chest", "findings": []},
]  # fmt: skip
NAMES = ["ascites", "pleural_effusion", "pleural_effusion@left", "pleural_effusion@right"]


def test_side_terms_are_signed_by_the_side_of_the_finding():
    coder = FindingsCoder(ROWS, "case", sides=True)
    assert coder.kinds == NAMES
    assert coder.signs(ROWS).tolist() == [
        [1.0, 1.0, 1.0, -1.0],  # left effusion: the right term is absent
        [1.0, 1.0, 1.0, -1.0],  # the same scan's abdomen row: the same scan code
        [-1.0, 1.0, 1.0, 1.0],  # bilateral: both sides (and no ascites)
        [-1.0, -1.0, -1.0, -1.0],  # no effusion: no side either
    ]


def test_side_terms_are_off_by_default_and_follow_the_region_scope():
    assert FindingsCoder(ROWS).kinds == ["ascites", "pleural_effusion"]
    signs = FindingsCoder(ROWS, "region", sides=True).signs(ROWS)
    assert signs[0].tolist() == [0.0, 1.0, 1.0, -1.0]  # the chest row: chest terms only
    assert signs[1].tolist() == [1.0, 0.0, 0.0, 0.0]  # its abdomen row: no side term
    # a row from outside the training rows is coded from its own findings, sides included
    new = {"case_id": "z", "region": "chest",
           "findings": [{"finding": "pleural_effusion", "side": "right"}]}  # fmt: skip
    assert FindingsCoder(ROWS, "region", sides=True).signs([new]).tolist() == [
        [0.0, 1.0, -1.0, 1.0]
    ]


def test_lm_stage_writes_side_terms_for_the_real_rows(synth_dir, tmp_path):
    _model, rows, collate = build_code_lm(synth_dir, tmp_path, "code_sides=true")
    coder = collate.coder
    left = coder.kinds.index("pleural_effusion@left")
    right = coder.kinds.index("pleural_effusion@right")
    sides: dict[str, set[str | None]] = {}  # scan -> sides of its effusion, over its rows
    for row in rows.rows:
        found = {f.get("side") for f in row.findings if f["finding"] == "pleural_effusion"}
        sides.setdefault(row.case_id, set()).update(found)
    signs = collate(rows.rows)["code_sign"]  # (B, K)
    assert {"left", "right"} <= set().union(*sides.values())  # both sides occur
    for row, s in zip(rows.rows, signs, strict=True):
        assert (s[left] > 0) == bool(sides[row.case_id] & {"left", "bilateral"})
        assert (s[right] > 0) == bool(sides[row.case_id] & {"right", "bilateral"})


def test_orthogonal_basis_gives_exactly_orthogonal_fixed_directions():
    from mu2.train.aids.findings_code import code_terms, kind_direction

    coder = FindingsCoder(ROWS, "case", sides=True, basis="orthogonal")
    u = coder.directions(64)  # (K, 64)
    assert torch.allclose(u @ u.T, torch.eye(len(NAMES)), atol=1e-6)
    # fixed per term, whatever the rows: the LM stage and SFT agree without storing it
    assert torch.equal(u[0], kind_direction("ascites", 64, "orthogonal"))
    random = FindingsCoder(ROWS, "case", sides=True).directions(64)
    assert (random @ random.T - torch.eye(len(NAMES))).abs().max() > 0.01  # chance overlap
    # too narrow for every term of the catalogue: the random vector
    assert len(code_terms()) > 16
    assert torch.equal(kind_direction("ascites", 16, "orthogonal"), kind_direction("ascites", 16))

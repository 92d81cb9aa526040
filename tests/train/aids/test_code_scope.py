"""The region-scoped findings code (``code_scope=region``): a row's code covers only the
kinds of its region, so the chest and the abdomen question of one scan ask for different
visual tokens; the LM stage and SFT build it from the real data rows."""

from __future__ import annotations

import pytest
import torch

from mu2.config import load_config
from mu2.findings.catalogue import FINDING_KINDS
from mu2.train.aids.findings_code import FindingsCoder, code_block, findings_code
from mu2.train.config import LMConfig, SFTConfig

from ..conftest import build_code_lm

ROWS = [  # one scan: an abdomen report row, a chest report row, a chest VQA row
    {"case_id": "a", "id": "a-abd", "region": "abdomen",
     "findings": [{"finding": "hepatomegaly"}, {"finding": "ascites"}]},
    {"case_id": "a", "id": "a-chest", "region": "chest", "findings": []},
    {"case_id": "b", "id": "b-chest", "region": "chest",
     "findings": [{"finding": "pleural_effusion"}]},
    {"case_id": "b", "id": "b-abd", "region": "abdomen", "findings": []},
]  # fmt: skip
# kinds in name order: ascites, hepatomegaly (abdomen), pleural_effusion (chest)
CHEST, ABDOMEN = [2], [0, 1]


def test_region_signs_are_zero_outside_the_rows_region():
    coder = FindingsCoder(ROWS, "region")
    assert coder.kinds == ["ascites", "hepatomegaly", "pleural_effusion"]
    signs = coder.signs(ROWS)  # (B, K)
    assert signs.tolist() == [
        [1.0, 1.0, 0.0],  # abdomen row of a: its abdominal kinds only
        [0.0, 0.0, -1.0],  # chest row of a: no effusion, nothing on the abdomen
        [0.0, 0.0, 1.0],
        [-1.0, -1.0, 0.0],
    ]
    whole = FindingsCoder(ROWS).signs(ROWS)  # the default case scope: the scan's code
    assert whole[1].tolist() == [1.0, 1.0, -1.0] and torch.equal(whole[0], whole[1])


def test_a_row_without_a_usable_region_keeps_the_scan_code():
    coder = FindingsCoder(ROWS, "region")
    no_region = {"case_id": "a", "id": "a-all", "findings": []}
    pelvis = {"case_id": "a", "id": "a-pelvis", "region": "pelvis", "findings": []}  # no kind
    assert coder.signs([no_region, pelvis]).tolist() == [[1.0, 1.0, -1.0]] * 2


def test_region_code_has_no_component_on_the_other_regions_kinds():
    coder = FindingsCoder(ROWS, "region")
    u = torch.eye(3, 8)  # orthonormal directions: a code's component on kind k is code[k]
    code = findings_code(u, coder.signs(ROWS))  # (B, E)
    assert code[1, ABDOMEN].abs().max().item() == 0.0  # the chest row: nothing abdominal
    assert code[0, CHEST].abs().max().item() == 0.0
    # the mean runs over the kinds in scope, as the case code's over all of them
    assert torch.allclose(code[1, CHEST], torch.tensor([-1.0]))
    assert torch.allclose(code[0, ABDOMEN], torch.tensor([0.5, 0.5]))
    block = code_block(u, coder.signs(ROWS), size=6, noise=0.0, low=0.25,
                       generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert block[1][:, ABDOMEN].abs().max().item() == 0.0
    assert torch.equal(torch.sign(block[0][:, ABDOMEN]), torch.ones(6, 2))
    # the random weights of a position sum to 1 over the kinds in scope
    assert torch.allclose(block[0][:, :3].abs().sum(dim=-1), torch.ones(6))


def test_unknown_scope_is_refused():
    from mu2.errors import Mu2Error

    with pytest.raises(Mu2Error, match="code_scope"):
        FindingsCoder(ROWS, "organ")
    with pytest.raises(Mu2Error, match="code_scope"):
        load_config(LMConfig, None, ["code_scope=organ"])
    with pytest.raises(Mu2Error, match="code_scope"):
        load_config(SFTConfig, None, ["code_scope=organ"])


def _abdominal(coder: FindingsCoder) -> list[int]:
    return [i for i, k in enumerate(coder.kinds) if FINDING_KINDS[k].region == "abdomen"]


def test_lm_stage_writes_the_scoped_code_for_the_real_rows(synth_dir, tmp_path):
    _model, rows, collate = build_code_lm(synth_dir, tmp_path, "code_scope=region")
    chest = [r for r in rows.rows if r.region == "chest"]
    assert chest
    signs = collate(chest)["code_sign"]  # (B, K)
    abdominal = _abdominal(collate.coder)
    assert abdominal and signs[:, abdominal].abs().max().item() == 0.0
    assert signs.abs().sum(dim=1).min().item() >= 1.0  # every row keeps its chest kinds


def test_sft_code_loss_targets_the_scoped_code(synth_dir, tmp_path, sft_config):
    from mu2.train.sft import SFTRecipe

    cfg = sft_config(tmp_path / "sft", "code_weight=1", "code_scope=region", "max_steps=1")
    recipe = SFTRecipe(cfg)
    _model, train, collate = recipe.build()
    chest = [i for i, r in enumerate(train.rows) if r.get("region") == "chest"][:3]
    assert chest
    batch = collate([train[i] for i in chest])
    (aid,) = [a for a in recipe.aids if a.name == "code"]
    abdominal = _abdominal(aid.collate.coder)
    assert abdominal and batch["code_sign"][:, abdominal].abs().max().item() == 0.0
    code = findings_code(aid.directions, batch["code_sign"])  # (B, E)
    # no abdominal kind in the target: zero projection once the chest kinds are removed
    chest_dirs = aid.directions[[i for i in range(len(aid.directions)) if i not in abdominal]]
    residual = code - (code @ torch.linalg.pinv(chest_dirs)) @ chest_dirs
    assert residual.abs().max().item() < 1e-5

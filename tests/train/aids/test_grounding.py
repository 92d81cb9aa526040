"""The grounding loss: label maps -> grounded ViT patches of a report row, and a loss that is
zero once enough of the row's relevance lies on them."""

from __future__ import annotations

import math

import pytest
import torch

from mu2.engine.dataset import read_rows
from mu2.errors import Mu2Error
from mu2.train.aids.grounding import (
    GroundingCollator,
    GroundingMasks,
    grounded_labels,
    grounding_loss,
)


@pytest.fixture(scope="module")
def labelled_dir(tmp_path_factory):
    """6 tiny synthetic cases with label maps (``--save-labels``)."""
    from mu2.data.synthetic.synth import synthesize
    from mu2.data.synthetic.synth_config import make_config

    out = tmp_path_factory.mktemp("labelled")
    synthesize(out, 6, 0, make_config("tiny", "tiny"), workers=1, progress=False,
               save_labels=True, preset="tiny", size="tiny")  # fmt: skip
    return out


def test_only_fluid_and_focal_findings_are_grounded():
    assert grounded_labels([{"finding": "ascites"}, {"finding": "pleural_effusion"}]) == {"fluid"}
    assert grounded_labels([{"finding": "liver_cyst"}]) == {"lesion"}
    assert grounded_labels([{"finding": "hepatomegaly"}, {"finding": "fatty_liver"}]) == set()
    assert grounded_labels([]) == set()


def test_loss_is_zero_at_the_target_share_and_grows_as_the_share_falls():
    mask = torch.zeros(1, 1, 1, 2, 2, dtype=torch.bool)
    mask[0, 0, 0, 0, 0] = True  # one of four patches

    def loss(on: float) -> float:
        r = torch.tensor([on, (1 - on) / 3, (1 - on) / 3, (1 - on) / 3]).view(1, 1, 1, 2, 2)
        return grounding_loss(r, mask, target=0.5).item()

    assert loss(0.5) == pytest.approx(0.0, abs=1e-6)
    assert loss(0.9) == 0.0
    assert loss(0.25) == pytest.approx(math.log(2), rel=1e-5)
    assert loss(0.05) > loss(0.25) > 0


def test_rows_without_a_mask_do_not_count_and_the_gradient_moves_relevance_onto_the_mask():
    logits = torch.zeros(2, 1, 1, 2, 2, requires_grad=True)
    mask = torch.zeros(2, 1, 1, 2, 2, dtype=torch.bool)
    mask[0, 0, 0, 1, 1] = True  # row 1 has nothing to ground
    r = logits.flatten(1).softmax(dim=1).view_as(logits)
    loss = grounding_loss(r, mask, target=0.5)
    loss.backward()
    assert loss.item() == pytest.approx(math.log(0.5 / 0.25), rel=1e-5)
    g = logits.grad
    assert g[0, 0, 0, 1, 1] < 0 < g[0, 0, 0, 0, 0]  # descent raises the masked patch
    assert torch.all(g[1] == 0)
    empty = grounding_loss(r.detach().requires_grad_(), torch.zeros_like(mask), 0.5)
    assert empty.item() == 0.0 and empty.requires_grad


def test_masks_mark_the_patches_of_the_rows_fluid(labelled_dir):
    rows = read_rows(labelled_dir / "train.jsonl", ("image",))
    masks = GroundingMasks(rows, labelled_dir / "train.jsonl", "tiny", (4, 8, 8), 0.25)
    grounded = [r for r in rows if masks.labels_of(r)]
    assert grounded, "the tiny preset draws fluid in most cases"
    assert all(r["task"] == "report" for r in grounded)  # VQA rows carry the whole case
    found = [masks.mask(r) for r in grounded]
    assert sum(m is not None for m in found) >= len(grounded) // 2  # most fluid is patch-sized
    for r in rows:
        m = masks.mask(r)
        if not masks.labels_of(r):
            assert m is None
        elif m is not None:
            assert m.dtype == torch.bool and m.shape[1:] == (4, 8, 8)
            assert 0 < int(m.sum()) < m.numel() // 4  # fluid is a small part of the scan
    # the mask is the label's own: a higher share threshold keeps a subset of the patches
    strict = GroundingMasks(rows, labelled_dir / "train.jsonl", "tiny", (4, 8, 8), 0.9)
    pairs = [(masks.mask(r), strict.mask(r)) for r in grounded]
    pairs = [(m, s) for m, s in pairs if m is not None]
    assert pairs
    for m, s in pairs:
        strict_count = 0 if s is None else int(s.sum())
        assert strict_count < int(m.sum())
        if s is not None:
            assert bool((s <= m).all())


def test_collator_pads_masks_to_the_batch_frames(labelled_dir):

    rows = read_rows(labelled_dir / "train.jsonl", ("image",))
    masks = GroundingMasks(rows, labelled_dir / "train.jsonl", "tiny", (4, 8, 8), 0.25)
    grounded = next(r for r in rows if masks.mask(r) is not None)
    plain = next(r for r in rows if not masks.labels_of(r))
    t = masks.mask(grounded).shape[0]

    def collate(items):
        return {"frame_mask": torch.ones(len(items), t + 1, dtype=torch.bool)}

    batch = GroundingCollator(collate, masks)([grounded, plain])
    assert batch["ground_mask"].shape == (2, t + 1, 4, 8, 8)
    assert torch.equal(batch["ground_mask"][0, :t], masks.mask(grounded))
    assert not batch["ground_mask"][0, t:].any() and not batch["ground_mask"][1].any()


def test_a_missing_label_map_is_one_clear_error(synth_dir):
    rows = read_rows(synth_dir / "train.jsonl", ("image",))  # written without label maps
    row = {**rows[0], "task": "report", "findings": [{"finding": "ascites"}]}
    masks = GroundingMasks([row], synth_dir / "train.jsonl", "tiny", (4, 8, 8), 0.25)
    with pytest.raises(Mu2Error, match="no label map") as err:
        masks.mask(row)
    assert "--save-labels" in str(err.value.fix)


def test_sft_with_grounding_logs_the_loss_and_refuses_baselines(labelled_dir, tmp_path, sft_config):
    from mu2.train.sft import SFTRecipe, run_sft

    data = [f"data.train={labelled_dir / 'train.jsonl'}", f"data.val={labelled_dir / 'val.jsonl'}"]
    cfg = sft_config(tmp_path / "sft", *data, "ground_weight=1", "max_steps=2", "data.limit=16")
    run_sft(cfg)
    logged = (tmp_path / "sft" / "metrics.jsonl").read_text()
    assert '"ground"' in logged
    bad = sft_config(tmp_path / "spp", *data, "ground_weight=1", "model.preset=spp")
    with pytest.raises(Mu2Error, match="relevance"):
        SFTRecipe(bad).build()


@pytest.mark.parametrize(
    "override", ["ground_weight=-1", "ground_target=0", "ground_target=1.5", "ground_min_share=0"]
)
def test_bad_grounding_settings_are_refused(override, tmp_path, sft_config):
    with pytest.raises(Mu2Error, match=override.split("=")[0]):
        sft_config(tmp_path / "sft", override)

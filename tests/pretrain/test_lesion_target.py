"""Stage 0's localising target (``model.lesion_weight``): the loss against hand-computed
values, a micro model that learns where a planted blob is, the recipe's refusals, and a
short run that reads the label maps (which ``tests/engine/test_label_patches.py`` checks
against the scan)."""

import json
import math
from pathlib import Path

import pytest
import torch

from mu2.pretrain.clip import lesion_loss

from ..cli.conftest import run
from .conftest import micro_clip


def _bce(logit: float, target: float) -> float:
    p = 1 / (1 + math.exp(-logit))
    return -(target * math.log(p) + (1 - target) * math.log(1 - p))


def test_lesion_loss_matches_hand_computed_value():
    # Scan 0: a lesion patch (share 0.5), two clean patches, a sliver (0.01, left out).
    # Scan 1: clean, its last patch a padded frame with a high logit (must not count).
    logits = torch.tensor([[2.0, -1.0, 0.5, 3.0], [0.2, -0.4, 1.0, 9.0]])
    share = torch.tensor([[0.5, 0.0, 0.0, 0.01], [0.0, 0.0, 0.0, 0.0]])
    valid = torch.tensor([[True, True, True, True], [True, True, True, False]])
    negatives = [_bce(v, 0) for v in (-1.0, 0.5, 0.2, -0.4, 1.0)]
    patch = (_bce(2.0, 1) + sum(negatives) / len(negatives)) / 2
    scan = (_bce(3.0, 1) + _bce(1.0, 0)) / 2  # peaks: 3.0 (the sliver), 1.0 (not the pad)
    got = lesion_loss(logits, share, valid, min_share=0.05)
    assert got.item() == pytest.approx(patch + scan, rel=1e-6)


def test_lesion_loss_without_lesions_is_the_scan_term_and_negatives():
    logits = torch.tensor([[-2.0, -3.0]])
    got = lesion_loss(logits, torch.zeros(1, 2), torch.ones(1, 2, dtype=torch.bool), 0.05)
    expected = (_bce(-2.0, 0) + _bce(-3.0, 0)) / 2 + _bce(-2.0, 0)
    assert got.item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("head", ["linear", "mlp"])
def test_the_lesion_head_learns_where_a_planted_blob_is(head):
    model = micro_clip(0, clip_weight=0.0, findings_weight=0.0, lesion_weight=1.0, lesion_head=head)
    g = torch.Generator().manual_seed(1)

    def batch():
        pixel_values = torch.rand(8, 1, 4, 16, 16, generator=g) * 0.5  # (B, T, K, H, W)
        share = torch.zeros(8, 1, 2, 4, 4)  # (B, T, gz, gy, gx)
        for i in range(0, 8, 2):  # every other scan gets a bright patch somewhere
            z, y, x = (int(v) for v in torch.randint(0, 4, (3,), generator=g))
            z %= 2
            pixel_values[i, 0, 2 * z : 2 * z + 2, 4 * y : 4 * y + 4, 4 * x : 4 * x + 4] = 1.0
            share[i, 0, z, y, x] = 1.0
        return pixel_values, share

    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(60):
        pv, share = batch()
        out = model(pv, lesion_share=share)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(out.lesion_loss.item())
    assert sum(losses[-10:]) / 10 < 0.3 * sum(losses[:10]) / 10
    # evaluation computes no lesion loss
    model.eval()
    pv, share = batch()
    assert model(pv, lesion_share=share).lesion_loss.item() == 0.0


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """`mu2 ARGV` in-process, as a user runs it: (exit code, stdout + stderr)."""
    code, out, err = run(argv, capsys)
    return code, out + err


def _args(data: Path, out: Path, *extra: str) -> list[str]:
    return [
        "train", "clip", "--config", "configs/clip/tiny.yaml", f"output_dir={out}",
        "max_steps=2", "batch_size=2", "log_every=1", f"data.train={data / 'train.jsonl'}",
        "data.val=null", "data.test=null", "data.cache=memory", "tensorboard=false",
        "model.lesion_weight=1.0", *extra,
    ]  # fmt: skip


def test_a_short_run_reads_the_label_maps(nodule_dir, tmp_path, capsys):
    code, output = _run(_args(nodule_dir, tmp_path / "clip"), capsys)
    assert code == 0, output
    logged = [json.loads(line) for line in (tmp_path / "clip" / "metrics.jsonl").open()]
    assert [r["lesion_loss"] for r in logged if "lesion_loss" in r][0] > 0


@pytest.mark.parametrize(
    "extra, match",
    [
        (["data.augmentation.rot90_prob=0.5"], "rot90_prob=0"),
        (["data.augmentation.flip_prob=0.1"], "flip_prob=0"),
    ],
)
def test_augmentation_that_moves_voxels_is_refused(nodule_dir, tmp_path, extra, match, capsys):
    code, output = _run(_args(nodule_dir, tmp_path / "clip", *extra), capsys)
    assert code == 2
    assert match in output and "Traceback" not in output


def test_missing_label_maps_are_one_clear_error(nodule_dir, tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    rows = (nodule_dir / "train.jsonl").read_text().splitlines()
    fixed = []
    for line in rows:
        row = json.loads(line)
        row["image"] = str((nodule_dir / row["image"]).resolve())
        fixed.append(json.dumps(row))
    (data / "train.jsonl").write_text("\n".join(fixed) + "\n")  # no labels/ folder beside it
    code, output = _run(_args(data, tmp_path / "clip"), capsys)
    assert code == 2
    assert "--save-labels" in output and "lesion_weight=0" in output and "Traceback" not in output

"""Stage 0's anatomy target (``model.organ_weight``): the per-patch target built from the
label-map shares (padded frames out, the rest group filled in), and the recipe reading the
label maps through ``mu2 train clip`` (one clear error for names it does not know)."""

import json
import math
from pathlib import Path

import pytest
import torch

from ..cli.conftest import run
from .conftest import micro_clip


def _organ_batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two scans of two frames, the first scan's last frame padding; groups 0.2 / 0.3 on
    every real patch, 0.9 / 0.1 (no rest) on the padded frame."""
    pixel_values = torch.rand(2, 2, 4, 16, 16)  # (B, T, K, H, W)
    frame_mask = torch.tensor([[True, False], [True, True]])
    share = torch.zeros(2, 2, 2, 2, 4, 4)  # (B, G, T, gz, gy, gx)
    share[:, 0], share[:, 1] = 0.2, 0.3
    share[0, 0, 1], share[0, 1, 1] = 0.9, 0.1
    return pixel_values, frame_mask, share


def _organ_loss(head_shares: tuple[float, float, float]) -> float:
    """Organ loss of a head that says ``head_shares`` (groups, rest) for every patch."""
    model = micro_clip(0, clip_weight=0.0, findings_weight=0.0, organ_groups=2, organ_weight=1.0)
    with torch.no_grad():
        model.organ_head.weight.zero_()
        model.organ_head.bias.copy_(torch.tensor(head_shares).log())
    pixel_values, frame_mask, share = _organ_batch()
    return model(pixel_values, frame_mask, organ_share=share).organ_loss.item()


def test_the_organ_loss_is_the_kl_to_each_real_patch_shares_and_rest():
    # KL is 0 only for the real patches' (0.2, 0.3, rest 0.5): the padded frame's
    # (0.9, 0.1, 0) must not count, and the groups must not be swapped.
    assert _organ_loss((0.2, 0.3, 0.5)) == pytest.approx(0.0, abs=1e-6)
    swapped = 0.2 * math.log(0.2 / 0.3) + 0.3 * math.log(0.3 / 0.2)  # by hand
    assert _organ_loss((0.3, 0.2, 0.5)) == pytest.approx(swapped, rel=1e-4)
    # A head that leaves no room for the rest (half of every patch) is far off.
    no_rest = 0.2 * math.log(0.2 / 0.4) + 0.3 * math.log(0.3 / 0.6) + 0.5 * math.log(0.5 / 1e-6)
    assert _organ_loss((0.4, 0.6, 1e-6)) == pytest.approx(no_rest, rel=1e-3)


def test_without_shares_or_in_evaluation_there_is_no_organ_loss():
    model = micro_clip(0, clip_weight=0.0, findings_weight=1.0, organ_groups=2, organ_weight=1.0)
    pixel_values, frame_mask, share = _organ_batch()
    assert model(pixel_values, frame_mask).organ_loss.item() == 0.0
    model.eval()
    assert model(pixel_values, frame_mask, organ_share=share).organ_loss.item() == 0.0


def _args(data: Path, out: Path, *extra: str) -> list[str]:
    return [
        "train", "clip", "--config", "configs/clip/tiny.yaml", f"output_dir={out}",
        "max_steps=2", "batch_size=2", "log_every=1", f"data.train={data / 'train.jsonl'}",
        "data.val=null", "data.test=null", "data.cache=memory", "tensorboard=false",
        "model.lesion_weight=0", "model.organ_weight=1.0", *extra,
    ]  # fmt: skip


def test_a_short_run_reads_the_organ_shares(nodule_dir, tmp_path, capsys):
    code, out, err = run(_args(nodule_dir, tmp_path / "clip"), capsys)
    assert code == 0, out + err
    logged = [json.loads(line) for line in (tmp_path / "clip" / "metrics.jsonl").open()]
    assert [r["organ_loss"] for r in logged if "organ_loss" in r][0] > 0
    assert all(r.get("lesion_loss", 0.0) == 0.0 for r in logged)


def test_an_unknown_organ_label_is_one_clear_error(nodule_dir, tmp_path, capsys):
    args = _args(nodule_dir, tmp_path / "clip", "model.organ_labels=[liver,spleen+pancreaz]")
    code, out, err = run(args, capsys)
    assert code == 2
    assert "pancreaz" in out + err and "spleen" in out + err and "Traceback" not in out + err

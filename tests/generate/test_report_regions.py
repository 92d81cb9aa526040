"""The simple region rule on the real CT and on synthetic phantoms with known regions."""

from __future__ import annotations

import json
from pathlib import Path

from mu2.generate.regions import detect_regions
from mu2.io import load_ct


def test_real_abdomen_pelvis_ct(real_ct_path: Path) -> None:
    v = load_ct(real_ct_path)
    # Abdomen/pelvis CT with only a few lung-base slices: no chest section.
    assert detect_regions(v.array, v.spacing) == ["abdomen", "pelvis"]
    # Its upper half (liver to mid abdomen) does not reach the pelvis.
    assert detect_regions(v.array[:, :, 60:], v.spacing) == ["abdomen"]


def test_synthetic_regions_match_ground_truth(synth_dir: Path) -> None:
    gts = sorted((synth_dir / "gt").glob("*.json"))
    assert gts
    for gt_path in gts:
        gt = json.loads(gt_path.read_text())
        v = load_ct(synth_dir / gt["image"])
        assert detect_regions(v.array, v.spacing) == list(gt["regions"]), gt["case_id"]

"""Label maps on the ViT patch grid (``mu2.engine.label_patches``), checked against the scan
itself: the patches a lesion's label covers are the patches where the lesion changes the
prepared frames."""

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch.nn.functional as F


@pytest.fixture(scope="module")
def nodule_dir(tmp_path_factory) -> Path:
    """2 tiny synthetic cases, each with a large lung nodule, and their label maps."""
    from mu2.data.synthetic.synth import synthesize
    from mu2.data.synthetic.synth_config import make_config

    out = tmp_path_factory.mktemp("nodules")
    overrides = ["kinds=[lung_nodule]", "prevalence=1.0", "lung_nodule_mm=[40,55]",
                 "vqa_per_case=0", "split=[1.0,0.0,0.0]"]  # fmt: skip
    synthesize(out, 2, 0, make_config("tiny", "tiny", overrides=overrides), workers=1,
               progress=False, save_labels=True, preset="tiny", size="tiny")  # fmt: skip
    return out


@pytest.mark.parametrize("label", ["lesion", "spleen"])
def test_label_shares_sit_where_the_label_changes_the_prepared_scan(nodule_dir, label):
    """Reference from the scan alone: prepare it as drawn and with the label's voxels set to
    air; the patches that differ are where the label is. The label is the second of two
    groups, so the groups' order is checked too."""
    from mu2.data.synthetic.anatomy import LABELS
    from mu2.data.synthetic.synth import label_map_path
    from mu2.engine.label_patches import patch_label_share, patch_label_shares
    from mu2.io import load_ct
    from mu2.preprocess import prep_config, prepare

    case = json.loads((nodule_dir / "train.jsonl").read_text().splitlines()[0])
    image = nodule_dir / case["image"]
    labels = label_map_path(nodule_dir, case["case_id"])
    groups = [["liver", "fat"], [label]]
    share = patch_label_shares(labels, image, "tiny", groups, (4, 8, 8))[1]  # (T, gz, gy, gx)
    alone = patch_label_share(labels, image, "tiny", [label], (4, 8, 8))
    assert bool((share == alone).all())

    img = nib.load(str(image))
    voxels = np.asarray(nib.load(str(labels)).dataobj) == LABELS[label]
    assert voxels.sum() > 50
    air = np.asarray(img.dataobj, dtype=np.float32).copy()
    air[voxels] = -1000.0
    cleared = image.parent / "cleared.nii.gz"
    nib.save(nib.Nifti1Image(air, img.affine), str(cleared))
    cfg = prep_config("tiny")
    diff = (prepare(load_ct(image), cfg).frames - prepare(load_ct(cleared), cfg).frames).abs()
    changed = F.avg_pool3d(diff[:, None], (4, 8, 8))[:, 0] > 0.01  # (T, gz, gy, gx)
    assert share.shape == changed.shape
    label_patches = share >= 0.05
    assert int(label_patches.sum()) >= 2
    assert bool(changed[label_patches].all())  # every label patch shows the label
    assert int((changed & (share <= 0)).sum()) <= int(changed.sum()) // 4  # few outside it

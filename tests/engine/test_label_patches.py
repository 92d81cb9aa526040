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


def test_label_shares_sit_where_the_lesion_changes_the_prepared_scan(nodule_dir):
    """Reference from the scan alone: prepare it as drawn and with the lesion voxels set to
    air; the patches that differ are where the lesion is."""
    from mu2.data.synthetic.anatomy import LABELS
    from mu2.data.synthetic.synth import label_map_path
    from mu2.engine.label_patches import patch_label_share
    from mu2.io import load_ct
    from mu2.preprocess import prep_config, prepare

    case = json.loads((nodule_dir / "train.jsonl").read_text().splitlines()[0])
    image = nodule_dir / case["image"]
    labels = label_map_path(nodule_dir, case["case_id"])
    share = patch_label_share(labels, image, "tiny", ["lesion"], (4, 8, 8))  # (T, gz, gy, gx)

    img = nib.load(str(image))
    lesion = np.asarray(nib.load(str(labels)).dataobj) == LABELS["lesion"]
    assert lesion.sum() > 50
    air = np.asarray(img.dataobj, dtype=np.float32).copy()
    air[lesion] = -1000.0
    cleared = image.parent / "cleared.nii.gz"
    nib.save(nib.Nifti1Image(air, img.affine), str(cleared))
    cfg = prep_config("tiny")
    diff = (prepare(load_ct(image), cfg).frames - prepare(load_ct(cleared), cfg).frames).abs()
    changed = F.avg_pool3d(diff[:, None], (4, 8, 8))[:, 0] > 0.01  # (T, gz, gy, gx)
    assert share.shape == changed.shape
    lesion_patches = share >= 0.05
    assert int(lesion_patches.sum()) >= 2
    assert bool(changed[lesion_patches].all())  # every lesion patch shows the lesion
    assert int((changed & (share <= 0)).sum()) <= int(changed.sum()) // 4  # few outside it

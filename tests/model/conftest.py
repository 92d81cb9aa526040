"""Tiny μ² models, texts and prepared synthetic volumes shared by the model tests."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mu2.io import CTVolume
from mu2.preprocess import prep_config, prepare

REPORTS = [
    "The liver is normal in size. No focal lesion.",
    "A 12 mm cyst in the left kidney. The spleen is normal.",
    "Mild hepatic steatosis. Small gallstone measuring 8 mm.",
    "Bilateral pleural effusion, moderate. The lungs are otherwise clear.",
]
QUESTIONS = ["Describe the findings of the abdomen in this CT.", "Describe the chest."]


def phantom_volume(slices: int, seed: int = 0) -> CTVolume:
    """Air around a soft-tissue body with a bright 'organ': valid HU, 1.5 mm voxels."""
    rng = np.random.default_rng(seed)
    arr = np.full((48, 40, slices), -1000.0, dtype=np.float32)
    arr[8:40, 6:34, :] = 40.0 + rng.normal(0, 10, (32, 28, slices))
    arr[14:24, 10:20, slices // 4 : slices // 2] = 180.0
    return CTVolume.from_array(arr, (1.5, 1.5, 1.5))


@pytest.fixture(scope="session")
def reports() -> list[str]:
    return list(REPORTS)


@pytest.fixture(scope="session")
def questions() -> list[str]:
    return list(QUESTIONS)


@pytest.fixture(scope="session")
def prepared_frames() -> list[torch.Tensor]:
    """Two prepared tiny volumes: 40 slices and 20 slices (different T)."""
    cfg = prep_config("tiny")
    return [
        prepare(phantom_volume(40), cfg).frames,
        prepare(phantom_volume(20, seed=1), cfg).frames,
    ]


@pytest.fixture(scope="session")
def tiny_model():
    from mu2.model import build

    return build("tiny", "mu2", train_texts=REPORTS + QUESTIONS, seed=0).eval()

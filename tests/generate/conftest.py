"""Fixtures for the report tests: a real (untrained) tiny mu2 model and a synthetic set.

The model is the real component built by ``mu2.model.build`` and saved like a trained one;
tests check code paths, shapes, alignment and exit codes, not report quality.
"""

from __future__ import annotations

from pathlib import Path

import pytest

TRAIN_TEXTS = [
    "Describe the findings of the abdomen in this CT.",
    "The liver is normal in size and attenuation. No ascites.",
    "There is a simple cortical cyst in the left kidney, measuring 12 mm.",
    "The lungs are clear. No pleural effusion.",
    "The bladder is unremarkable.",
]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mu2.model import build

    out = tmp_path_factory.mktemp("tiny_model")
    build("tiny", preset="mu2", train_texts=TRAIN_TEXTS, seed=0).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def generator(tiny_model_dir: Path):
    from mu2.generate.pipeline import ReportGenerator

    return ReportGenerator(tiny_model_dir)


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six tiny synthetic cases with label maps (lesion voxels known)."""
    from mu2.data.synthetic.synth import synthesize
    from mu2.data.synthetic.synth_config import make_config

    out = tmp_path_factory.mktemp("synth")
    synthesize(out, 6, 0, make_config("tiny", "tiny"), workers=1, progress=False, save_labels=True)
    return out

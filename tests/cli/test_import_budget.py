"""Start-up cost of the CLI: what `mu2 --help` and `mu2 report` import.

``import monai`` imports every MONAI sub-package (data, apps, transforms: seconds on a
CPU); the model's vision tower is MONAI's ViT layout built without it, and the CLI
imports torch and the model code only inside the commands that run a model.
"""

from __future__ import annotations

import subprocess
import sys

HEAVY_FOR_HELP = ("torch", "transformers", "monai", "numpy", "nibabel", "pydicom")
NEVER_FOR_REPORT = ("monai", "monai.data", "monai.apps", "monai.networks")


def _imported(code: str) -> set[str]:
    """Modules a fresh interpreter has imported after running ``code`` (from -X importtime)."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True, text=True, check=True, timeout=300,
    )  # fmt: skip
    names = set()
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip())
    return names


def test_help_imports_no_tensor_library():
    names = _imported("from mu2.cli.main import build_app; build_app()")
    assert "mu2.cli.main" in names  # the probe saw the CLI being imported
    assert not names & set(HEAVY_FOR_HELP), sorted(names & set(HEAVY_FOR_HELP))


def test_report_path_does_not_import_monai():
    """Everything `mu2 report` imports to load a model and write a report."""
    names = _imported(
        "import mu2.cli.main, mu2.cli.report, mu2.model, mu2.generate.pipeline, "
        "mu2.generate.decode, mu2.io, mu2.preprocess"
    )
    assert "mu2.model.vision" in names and "torch" in names
    assert not names & set(NEVER_FOR_REPORT), sorted(names & set(NEVER_FOR_REPORT))

"""Which body regions (chest / abdomen / pelvis) a CT covers, for the default question.

The rules live in :mod:`mu2.generate.coverage` (lungs inside the convex body outline,
pelvic bones, the abdomen between them; robust to tight fields of view and slabs). A scan
that covers no region by the rules (e.g. a few slices) gets none: the report then asks
the user to name one (``--region``) instead of guessing all three.
"""

from __future__ import annotations

import numpy as np

# Default question for one region: the first phrasing the report writer trains on.
DEFAULT_QUESTION = "Describe the findings of the {region} in this CT."


def detect_regions(array: np.ndarray, spacing: tuple[float, float, float]) -> list[str]:
    """Regions covered by a canonical RAS CT (X, Y, Z in HU), in report order."""
    from mu2.generate.coverage import detect_coverage

    return detect_coverage(array, spacing).regions


def default_question(region: str) -> str:
    return DEFAULT_QUESTION.format(region=region)

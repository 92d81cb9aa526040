"""Loading local models with the Hugging Face Hub client held offline.

mu2 loads metric and judge models from local folders only; holding the Hub client offline
turns any accidental download attempt into an immediate error instead of a network hang.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


@contextlib.contextmanager
def hub_offline() -> Iterator[None]:
    """Keep the Hub client offline while a local model loads (restored afterwards).

    huggingface_hub reads HF_HUB_OFFLINE once, at import, so the module constant is set
    as well as the environment variable (for libraries imported inside the block).
    """
    from huggingface_hub import constants

    old_env, old_const = os.environ.get("HF_HUB_OFFLINE"), constants.HF_HUB_OFFLINE
    os.environ["HF_HUB_OFFLINE"] = "1"
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = old_const
        if old_env is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = old_env

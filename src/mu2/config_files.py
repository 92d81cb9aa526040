"""The YAML configs shipped with mu2, addressable by name (as torchtune's recipes are).

``--config paper`` under ``mu2 train sft`` means ``configs/sft/paper.yaml``; ``sft/paper``
works anywhere. The configs live at the repository root (``configs/``) and ship inside
the wheel as ``mu2/configs`` (see setup.py), so both a checkout and a ``pip install``
find them. A path to an existing file is always taken as a path.
"""

from __future__ import annotations

import re
from pathlib import Path

from mu2.errors import Mu2Error

# config dataclass -> its folder under configs/
GROUPS = {
    "ClipConfig": "clip",
    "LMConfig": "lm",
    "SFTConfig": "sft",
    "DPOConfig": "dpo",
    "PrefsConfig": "prefs",
}
_NAME = re.compile(r"^(?:(?P<group>[\w-]+)/)?(?P<name>[\w.-]+?)(?:\.yaml)?$")


def configs_root() -> Path:
    """``mu2/configs`` in an installed wheel, else ``configs/`` of the source checkout."""
    import mu2

    package = Path(mu2.__file__).resolve().parent
    for candidate in (package / "configs", package.parents[1] / "configs"):
        if candidate.is_dir():
            return candidate
    raise Mu2Error("mu2's configs folder is missing from this installation", fix="reinstall mu2")


def list_configs() -> dict[str, Path]:
    """``group/name`` -> file, for every shipped YAML config."""
    root = configs_root()
    return {f"{p.parent.name}/{p.stem}": p for p in sorted(root.glob("*/*.yaml"))}


def resolve_config(value: str | Path, cls: type | None = None) -> Path:
    """A config path, or the shipped config that ``value`` names (``paper``, ``sft/paper``)."""
    path = Path(value).expanduser()
    if path.is_file():
        return path
    match = _NAME.match(str(value))
    group = GROUPS.get(cls.__name__) if cls is not None else None
    if match is not None and (match.group("group") or group):
        key = f"{match.group('group') or group}/{match.group('name')}"
        shipped = list_configs()
        if key in shipped:
            return shipped[key]
        names = [k for k in shipped if k.startswith(f"{key.split('/')[0]}/")]
        raise Mu2Error(
            f"no shipped config '{key}' and no such file",
            path=str(value),
            fix=f"pass a YAML path or one of {', '.join(names) or '(none)'} (see `mu2 config list`)",
        )
    raise Mu2Error("config file not found", path=str(value), fix="pass an existing YAML file")

"""Profiles as YAML data, and one way of building a recipe config.

A profile is a YAML mapping of an orchestrator's dataclass (``DemoConfig``,
``AblationConfig``). Each training stage in it is a :class:`StageSpec`::

    sft:
      recipe: sft/tiny          # a shipped recipe (configs/sft/tiny.yaml) or a YAML path
      set: [max_steps=4, optim.lr=3e-3]

``base: full`` makes a profile start from another one of the same folder: mappings merge
key by key and the ``set`` lists add up (base's first), so a profile lists only what it
changes. A recipe config is then built one way only (:func:`build_recipe`): the recipe
YAML, the orchestrator's wiring (output folder, data files, the stage it starts from),
then the profile's ``set`` overrides, through :mod:`mu2.config`'s override machinery.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from mu2.config import apply_overrides, from_dict
from mu2.config_files import resolve_config
from mu2.errors import Mu2Error

C = TypeVar("C")

# Fields of a stage section that are not recipe keys; ``--set sft.max_steps=300`` adds
# ``max_steps=300`` to the section's ``set`` list (see :func:`stage_overrides`).
SPEC_KEYS = ("recipe", "set")


@dataclass
class StageSpec:
    """One training stage of a profile: the recipe it runs and the profile's overrides."""

    recipe: str
    """A shipped recipe name (``sft/tiny``) or a path to a recipe YAML."""
    set: list[str] = field(default_factory=list)
    """``key=value`` overrides of the recipe config (dotted, as on the command line)."""


@dataclass
class OptionalStageSpec(StageSpec):
    """A stage an orchestrator can leave out (the LM stage, the DPO row)."""

    enabled: bool = True


def read_mapping(path: Path) -> dict[str, Any]:
    """A YAML file that must hold a mapping (one-line errors otherwise)."""
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except OSError:
        raise Mu2Error("cannot read the file", path=str(path)) from None
    except yaml.YAMLError as err:
        raise Mu2Error(f"not valid YAML ({err.__class__.__name__})", path=str(path)) from None
    if not isinstance(data, dict):
        raise Mu2Error("config must be a YAML mapping", path=str(path))
    return data


def _put(data: dict[str, Any], key: str, value: Any) -> None:
    """Set dotted ``key`` in a nested mapping (values are taken as they are, not parsed)."""
    node = data
    *parents, last = key.split(".")
    for part in parents:
        child = node.get(part)
        node[part] = dict(child) if isinstance(child, dict) else {}
        node = node[part]
    node[last] = value


def recipe_values(
    cls: type, spec: StageSpec, wiring: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Recipe YAML <- wiring (dotted keys, values as given) <- ``spec.set``, unvalidated."""
    data = copy.deepcopy(read_mapping(resolve_config(spec.recipe, cls)))
    for key, value in (wiring or {}).items():
        _put(data, key, value)
    return apply_overrides(data, list(spec.set))


def build_recipe(
    cls: type[C], spec: StageSpec, wiring: dict[str, Any] | None = None, where: str = ""
) -> C:
    """The recipe dataclass of a stage: recipe YAML, then wiring, then the ``set`` list."""
    data = recipe_values(cls, spec, wiring)
    return from_dict(cls, data, where=where or str(spec.recipe))


def merge_profiles(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """``top`` over ``base``: mappings merge key by key, ``set`` lists add up (base's first)."""
    out = dict(base)
    for key, value in top.items():
        old = out.get(key)
        if key == "set" and isinstance(old, list) and isinstance(value, list):
            out[key] = [*old, *value]
        elif isinstance(old, dict) and isinstance(value, dict):
            out[key] = merge_profiles(old, value)
        else:
            out[key] = value
    return out


def load_profile(name: str | Path, group: str, seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """The mapping of profile ``name`` (``full``, ``demo/full`` or a path), ``base`` resolved."""
    text = str(name)
    path = resolve_config(text if "/" in text or text.endswith(".yaml") else f"{group}/{text}")
    if str(path) in seen:
        raise Mu2Error("profile bases form a loop", path=str(path), fix="remove one 'base:'")
    data = read_mapping(path)
    base = data.pop("base", None)
    if base is None:
        return data
    return merge_profiles(load_profile(str(base), group, (*seen, str(path))), data)


def stage_overrides(
    overrides: list[str], stages: tuple[str, ...], aliases: dict[str, str] | None = None
) -> tuple[list[str], dict[str, list[str]]]:
    """Split ``--set`` items: ``<stage>.<recipe key>=v`` go to that stage's ``set`` list
    (``aliases`` renames a short key, e.g. ``steps`` -> ``max_steps``), the rest stay."""
    rest: list[str] = []
    extra: dict[str, list[str]] = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        stage, dot, sub = key.partition(".")
        if sep and dot and stage in stages and sub.split(".")[0] not in (*SPEC_KEYS, "enabled"):
            sub = (aliases or {}).get(sub, sub)
            extra.setdefault(stage, []).append(f"{sub}={value}")
        else:
            rest.append(item)
    return rest, extra


def add_stage_sets(data: dict[str, Any], extra: dict[str, list[str]]) -> dict[str, Any]:
    """``extra`` appended to each stage's ``set`` list of a profile mapping."""
    out = dict(data)
    for stage, items in extra.items():
        section = dict(out.get(stage) or {})
        section["set"] = [*(section.get("set") or []), *items]
        out[stage] = section
    return out

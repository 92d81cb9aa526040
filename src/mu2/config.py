"""Dataclass configs loaded from YAML with ``key=value`` overrides.

Every config in mu2 is a (possibly nested) dataclass validated in ``__post_init__``.
Unknown keys are errors that suggest the closest valid key, so a typo in a YAML file or
on the command line never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from mu2.errors import Mu2Error

C = TypeVar("C")


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _unknown_key(cls: type, key: str, where: str) -> Mu2Error:
    names = [f.name for f in dataclasses.fields(cls)]
    close = difflib.get_close_matches(key, names, n=1)
    hint = f"did you mean '{close[0]}'?" if close else f"valid keys: {', '.join(names)}"
    return Mu2Error(f"unknown config key '{key}' in {where}", fix=hint)


def _coerce(tp: Any, value: Any, key: str) -> Any:
    """Turn a YAML / command-line value into the field's declared type."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, key)
            except (Mu2Error, ValueError, TypeError):
                continue
        raise Mu2Error(f"config key '{key}': cannot read {value!r} as {tp}")
    if _is_dataclass_type(tp):
        if isinstance(tp, type) and isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise Mu2Error(f"config key '{key}' must be a mapping, got {value!r}")
        return from_dict(tp, value, where=key)
    if origin in (list, tuple):
        if isinstance(value, str):
            value = _yaml_value(value, key) if value.strip().startswith("[") else value.split(",")
        if not isinstance(value, (list, tuple)):
            value = [value]
        inner = args[0] if args else Any
        items = [
            _coerce(inner, v, key) if inner is not Any and inner is not Ellipsis else v
            for v in value
        ]
        return tuple(items) if origin is tuple else items
    if origin is dict or tp is dict:
        if isinstance(value, str):
            value = _yaml_value(value, key)
        if not isinstance(value, dict):
            raise Mu2Error(f"config key '{key}' must be a mapping, got {value!r}")
        return dict(value)
    if origin is typing.Literal:
        if value not in args:
            raise Mu2Error(f"config key '{key}' is {value!r}", fix=f"choose one of {list(args)}")
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "1", "yes", "on"):
            return True
        if str(value).lower() in ("false", "0", "no", "off"):
            return False
        raise Mu2Error(f"config key '{key}' must be true or false, got {value!r}")
    if tp in (int, float, str):
        try:
            if tp is int and isinstance(value, float) and not value.is_integer():
                raise ValueError
            return tp(value)
        except (TypeError, ValueError):
            raise Mu2Error(f"config key '{key}' must be {tp.__name__}, got {value!r}") from None
    return value


def from_dict(cls: type[C], data: dict[str, Any], *, where: str = "config") -> C:
    """Build dataclass ``cls`` from a (nested) mapping, rejecting unknown keys."""
    types_ = _field_types(cls)
    kwargs = {}
    for key, value in (data or {}).items():
        if key not in types_:
            raise _unknown_key(cls, key, where)
        kwargs[key] = _coerce(types_[key], value, f"{where}.{key}" if where != "config" else key)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as err:
        raise Mu2Error(f"invalid {where}: {err}") from None


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain mapping of a dataclass config (tuples become lists, for YAML)."""

    def plain(v: Any) -> Any:
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(dataclasses.asdict(cfg))


def _yaml_value(raw: str, key: str) -> Any:
    """A value of a ``key=value`` override read as YAML, or one clear error saying which."""
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError as err:
        problem = str(err).splitlines()[0]
        raise Mu2Error(
            f"override {key}={raw}: not a readable YAML value ({problem})",
            fix="quote list items that hold brackets or commas, e.g. "
            'data.overrides=["vqa_types=[presence,side]"]',
        ) from None


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b.c=value`` strings to a nested mapping (values parsed as YAML scalars)."""
    out = dict(data)
    for item in overrides:
        if "=" not in item:
            raise Mu2Error(f"override '{item}' is not key=value", fix="write e.g. optim.lr=1e-4")
        key, raw = item.split("=", 1)
        value = _yaml_value(raw, key) if raw != "" else ""
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            node[part] = dict(child) if isinstance(child, dict) else {}
            node = node[part]
        node[parts[-1]] = value
    return out


def load_config(
    cls: type[C], path: str | Path | None = None, overrides: list[str] | None = None
) -> C:
    """Load ``cls`` from a YAML file or shipped config name (optional) plus ``key=value``
    overrides."""
    data: dict[str, Any] = {}
    if path is not None:
        from mu2.config_files import resolve_config

        p = resolve_config(path, cls)  # a YAML path, or a shipped config's name
        try:
            data = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as err:
            raise Mu2Error(f"not valid YAML ({err.__class__.__name__})", path=str(p)) from None
        if not isinstance(data, dict):
            raise Mu2Error("config must be a YAML mapping", path=str(p))
    data = apply_overrides(data, overrides or [])
    return from_dict(cls, data, where=str(path) if path else "config")

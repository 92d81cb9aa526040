"""pyproject.toml declares what mu2 imports, no more: every third-party import of src/mu2
comes from a declared dependency (core or an extra), every declared runtime dependency is
used, each extra holds the modules mu2.extras checks, and a missing extra is one line."""

from __future__ import annotations

import ast
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from mu2.cli.main import main
from mu2.extras import EXTRAS

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
# Declared but used by another package rather than imported by mu2 (with the reason).
INDIRECT = {
    "python-multipart": "FastAPI's form parser (request.form)",
    "einops": "MONAI's ViT patch embedding (perceptron) imports it; MONAI lists it as optional",
    "tensorboard": "torch.utils.tensorboard's writer needs it",
}


def _names(reqs: list[str]) -> set[str]:
    return {canonicalize_name(Requirement(r).name) for r in reqs} - {"mu2"}


def _imports() -> set[str]:
    """Top-level module names imported anywhere in src/mu2."""
    found: set[str] = set()
    for path in (ROOT / "src" / "mu2").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found


def _distribution_of() -> dict[str, set[str]]:
    return {k: {canonicalize_name(d) for d in v} for k, v in packages_distributions().items()}


def test_every_import_is_declared_and_every_dependency_used():
    core = _names(PROJECT["dependencies"])
    extras = {k: _names(v) for k, v in PROJECT["optional-dependencies"].items() if k != "dev"}
    declared = core.union(*extras.values())
    dist_of = _distribution_of()
    third_party = {m for m in _imports() - set(sys.stdlib_module_names) if m != "mu2"}
    undeclared = {m for m in third_party if not dist_of.get(m, {m}) & declared}
    assert not undeclared, f"imported but not declared in pyproject.toml: {sorted(undeclared)}"
    used = set().union(*(dist_of.get(m, set()) for m in third_party))
    unused = declared - used - set(INDIRECT) - {"deepspeed"}  # deepspeed: accelerate loads it
    assert not unused, f"declared but never imported: {sorted(unused)}"
    missing = set(INDIRECT) - declared  # needed at run time although mu2 never imports them
    assert not missing, f"needed by other packages but not declared: {sorted(missing)}"


def test_extras_hold_what_mu2_extras_checks():
    dist_of = _distribution_of()
    for extra, modules in EXTRAS.items():
        declared = _names(PROJECT["optional-dependencies"][extra])
        for module in modules:
            if module in dist_of:  # installed here: its distribution must be in that extra
                assert dist_of[module] & declared, f"{module} is not in mu2[{extra}]"
    for extra in ("web", "eval", "train", "deepspeed", "all"):
        assert extra in PROJECT["optional-dependencies"]


def test_every_dependency_has_a_floor_and_a_ceiling():
    reqs = PROJECT["dependencies"] + [
        r for k, v in PROJECT["optional-dependencies"].items() if k != "dev" for r in v
    ]
    for text in reqs:
        req = Requirement(text)
        if req.name == "mu2":
            continue
        ops = {s.operator for s in req.specifier}
        assert ">=" in ops and "<" in ops, f"{text}: give a tested floor and a major ceiling"


def test_missing_extra_is_one_line(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "fastapi", None)  # as if mu2[web] were not installed
    assert main(["serve"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "mu2: error: `mu2 serve` needs the 'web' extra (fastapi is not installed) -- "
        "fix: install mu2[web]: pip install 'mu2[web]'"
    ]


@pytest.mark.parametrize("unused", ["rich"])
def test_removed_dependencies_stay_removed(unused):
    assert unused not in _names(PROJECT["dependencies"])
    assert unused not in _imports()

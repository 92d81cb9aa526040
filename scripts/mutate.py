"""Mutation testing of the core modules with mutmut, one group at a time (``make mutate``).

Each group of ``configs/mutation/core.yaml`` runs in its own scratch copy under
``build/mutate/<group>/`` (src, tests and a pyproject.toml whose ``[tool.mutmut]`` names
the group's modules and its narrowest test files), so groups never share mutmut's state
and the repository's own pyproject stays untouched. mutmut forks one warmed-up pytest
process per mutant and runs only the tests that cover the mutated function.

The score of a module is killed / (mutants - equivalent): a mutant that no test covers
counts as surviving. Equivalent mutants, listed with their reason in the YAML, are left
out. The per-module table is printed and written to ``build/mutate/scores.json``.

    python scripts/mutate.py                 # every group (tens of minutes on 2 cores)
    python scripts/mutate.py green dpo       # some groups
    python scripts/mutate.py --list green    # also list each surviving mutant
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "mutation" / "core.yaml"
WORK = ROOT / "build" / "mutate"
# mutmut's exit codes of a finished mutant (mutmut.stats.status_by_exit_code)
KILLED = {1, 3, 24, -24, 36, 152, 255, -9, -11, 37}
SURVIVED = {0}
NO_TESTS = {5, 33}


def _pyproject(modules: list[str], tests: list[str]) -> str:
    """The repository's pyproject.toml plus a [tool.mutmut] table for this group."""
    text = (ROOT / "pyproject.toml").read_text()
    if "[tool.mutmut]" in text:
        raise SystemExit("pyproject.toml has its own [tool.mutmut]: remove it (the groups set it)")
    return text + (
        "\n[tool.mutmut]\n"
        'source_paths = ["src"]\n'
        f"only_mutate = {json.dumps(modules)}\n"
        f"pytest_add_cli_args_test_selection = {json.dumps(tests)}\n"
        'pytest_add_cli_args = ["-x", "-q"]\n'
    )


def _prepare(group: str, spec: dict) -> Path:
    work = WORK / group
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    shutil.copytree(ROOT / "src", work / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "tests", work / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    (work / "pyproject.toml").write_text(_pyproject(spec["modules"], spec["tests"]))
    return work


def _module_name(path: str) -> str:
    return path.removeprefix("src/").removesuffix(".py").replace("/", ".")


def _results(work: Path, modules: list[str]) -> dict[str, dict[str, list[str]]]:
    """Per module: mutant names by outcome (killed / survived / no_tests / other)."""
    out: dict[str, dict[str, list[str]]] = {}
    for module in modules:
        meta = work / "mutants" / (module + ".meta")
        codes = json.loads(meta.read_text())["exit_code_by_key"] if meta.is_file() else {}
        groups: dict[str, list[str]] = {"killed": [], "survived": [], "no_tests": [], "other": []}
        for name, code in codes.items():
            kind = (
                "killed" if code in KILLED
                else "survived" if code in SURVIVED
                else "no_tests" if code in NO_TESTS
                else "other"
            )  # fmt: skip
            groups[kind].append(name)
        out[_module_name(module)] = groups
    return out


def score(groups: dict[str, list[str]], equivalent: set[str]) -> tuple[int, int, float]:
    """(killed, counted, score): equivalent survivors are not counted."""
    total = sum(len(v) for v in groups.values())
    eq = sum(1 for k in ("survived", "no_tests") for n in groups[k] if n in equivalent)
    counted = total - eq
    killed = len(groups["killed"])
    return killed, counted, (killed / counted if counted else 1.0)


def run_group(group: str, spec: dict, equivalent: set[str], show: bool) -> dict:
    work = _prepare(group, spec)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    start = time.monotonic()
    mutmut = Path(sys.executable).with_name("mutmut")
    proc = subprocess.run(
        [str(mutmut), "run", "--max-children", str(spec.get("max_children", 1))],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        tail = re.sub(r"[^\n]*\r", "", proc.stdout + proc.stderr)[-3000:]
        raise SystemExit(f"mutmut failed on group {group}:\n{tail}")
    report = {}
    for module, groups in _results(work, spec["modules"]).items():
        killed, counted, value = score(groups, equivalent)
        survivors = sorted(n for k in ("survived", "no_tests") for n in groups[k])
        left = [n for n in survivors if n not in equivalent]
        report[module] = {
            "mutants": sum(len(v) for v in groups.values()),
            "killed": killed,
            "equivalent": len(survivors) - len(left),
            "survived": left,
            "score": round(value, 4),
        }
        print(f"{module:40s} {killed:4d}/{counted:<4d} {100 * value:5.1f}%")
        if show:
            for name in left:
                print(f"    survived: {name}")
    print(f"  group {group}: {seconds:.0f} s")
    return {"seconds": round(seconds), "modules": report}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("groups", nargs="*", help="groups of configs/mutation/core.yaml")
    parser.add_argument("--list", action="store_true", help="list surviving mutants")
    args = parser.parse_args(argv)
    cfg = yaml.safe_load(CONFIG.read_text())
    names = args.groups or list(cfg["groups"])
    unknown = [g for g in names if g not in cfg["groups"]]
    if unknown:
        print(f"unknown group(s) {unknown}; choose from {list(cfg['groups'])}", file=sys.stderr)
        return 2
    equivalent = set((cfg.get("equivalent") or {}).keys())
    scores_path = WORK / "scores.json"
    for group in names:
        result = run_group(group, cfg["groups"][group], equivalent, args.list)
        # re-read before writing: another group may have finished meanwhile (two runs at once)
        scores = json.loads(scores_path.read_text()) if scores_path.is_file() else {}
        scores[group] = result
        scores_path.write_text(json.dumps(scores, indent=2) + "\n")
    low = Counter({m: r["score"] for g in names for m, r in scores[g]["modules"].items()})
    below = [m for m, s in low.items() if s < cfg.get("target", 0.8)]
    if below:
        print(f"below the target score: {', '.join(sorted(below))}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

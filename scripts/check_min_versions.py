"""Install the declared minimum versions in a fresh virtual environment and run the quick tests.

Every direct dependency of mu2 (core, the ``train``/``eval``/``web`` extras and the test
tools of ``dev``) is pinned to the floor that pyproject.toml declares (``name>=X`` ->
``name==X``); pip resolves the rest. torch is the exception: it is pinned to ``--torch``
(default ``torch==2.13.0``, the CPU build available offline here), so its floor is not
exercised by this check.

    python scripts/check_min_versions.py [--venv DIR] [-- PYTEST_ARGS...]

Exit code: pip's or pytest's. Run by tests/test_min_versions.py (marked slow).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import venv
from pathlib import Path

import tomllib
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
EXTRAS = ("train", "eval", "web", "dev")
# The quick tests that cover what the floors matter for: the model and its Hugging Face /
# peft plumbing, preprocessing with MONAI, I/O, the tokenizer, the CLI, the web app.
DEFAULT_TESTS = [
    "tests/model",
    "tests/preprocess",
    "tests/io",
    "tests/tokenizer",
    "tests/test_config.py",
    "tests/cli/test_model_cli.py",
    "tests/cli/test_config_cli.py",
    "tests/metrics/test_nlg.py",
    "tests/test_dependencies.py",
]


def floor_pins(pyproject: Path, torch_pin: str) -> list[str]:
    """``name==floor`` for every direct dependency with a ``>=`` floor (torch: ``torch_pin``)."""
    project = tomllib.loads(pyproject.read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in EXTRAS:
        reqs += project["optional-dependencies"][extra]
    pins: list[str] = []
    for text in reqs:
        req = Requirement(text)
        if req.name == "mu2":
            continue  # a self-reference to other extras, listed here already
        if req.name == "torch":
            pins.append(torch_pin)
            continue
        floors = [s.version for s in req.specifier if s.operator == ">="]
        if not floors:
            raise SystemExit(f"{pyproject}: '{text}' declares no floor (>=)")
        pins.append(f"{req.name}=={floors[0]}")
    return sorted(set(pins))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, default=Path("/tmp/mu2-min-versions"))
    parser.add_argument("--torch", default="torch==2.13.0")
    parser.add_argument("pytest_args", nargs="*", help="after --: pytest arguments")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    pins = floor_pins(ROOT / "pyproject.toml", args.torch)
    print("pins:", " ".join(pins), flush=True)
    if not (args.venv / "bin" / "python").exists():
        venv.create(args.venv, with_pip=True)
    py = str(args.venv / "bin" / "python")
    pip = [py, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    # torch first, alone: with it installed, no other package pulls a CUDA build.
    for step in ([args.torch], pins, ["--no-deps", "-e", str(ROOT)]):
        rc = subprocess.call([*pip, *step])
        if rc:
            print(f"pip install failed ({rc}) for: {' '.join(step)}", file=sys.stderr)
            return rc
    subprocess.call([py, "-m", "pip", "list", "--format=freeze", "--disable-pip-version-check"])
    tests = args.pytest_args or ["-q", "-x", *DEFAULT_TESTS]
    rc = subprocess.call([py, "-m", "pytest", *tests], cwd=ROOT)
    print(f"minimum-versions check: rc={rc} in {time.perf_counter() - t0:.0f} s", flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())

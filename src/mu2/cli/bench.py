"""``mu2 bench``: the paper's tables on the embedded benchmark.

mu2 bench ablation [--profile paper] [--quick] [--seeds 3] [--presets spp,perceiver,...,mu2]
                   [--dpo] [--data procedural|real|both] [--out DIR] [--set key=value ...]
mu2 bench table --out DIR        # rebuild table.md / plots from the metrics files
mu2 bench tokenizer [--quick] [--seeds 3] [--rows mu2,linvt,...] [--out DIR] [--set key=value]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from mu2.cli.logs import configure_logging
from mu2.cli.overrides import merge
from mu2.cli.overrides import positional as overrides_arg
from mu2.errors import Mu2Error

_EXTRA = {"help_option_names": ["-h", "--help"]}


def resolve_config(
    config: Path | None,
    flags: dict[str, Any],
    overrides: list[str],
    quick: bool,
    profile: str | None = None,
) -> Any:
    """configs/bench/ablation.yaml (--profile paper: ablation-paper.yaml; --quick: the
    profile's -quick variant) <- the YAML of --config <- flags <- --set (see
    :func:`mu2.bench.config.make_ablation_config`)."""
    from mu2.bench.config import make_ablation_config
    from mu2.recipes.profile import merge_profiles, read_mapping

    data: dict[str, Any] = {}
    if config is not None:
        if not config.is_file():
            raise Mu2Error("config file not found", path=str(config), fix="pass an existing YAML")
        data = read_mapping(config)
    given = {k: v for k, v in flags.items() if v is not None}
    if "dpo" in given:  # --dpo/--no-dpo: the mu2 + DPO row
        given["dpo"] = {"enabled": given["dpo"]}
    where = str(config) if config else "bench ablation"
    return make_ablation_config(quick, merge_profiles(data, given), overrides, where, profile)


def register(app: typer.Typer) -> None:
    bench = typer.Typer(
        help="Benchmarks: the paper's Table 1 / Table 2 analogues on the embedded benchmark.",
        no_args_is_help=True,
    )
    app.add_typer(bench, name="bench")

    @bench.command("ablation", context_settings=_EXTRA)
    def ablation(
        profile: str | None = typer.Option(
            None,
            "--profile",
            "-p",
            help="ablation (default: the findings-code recipe), paper (the paper's recipe: "
            "text-only LM stage, next-token loss, LLM trained; VQA types), or a profile YAML.",
        ),
        quick: bool = typer.Option(
            False, "--quick", help="1 seed, 16 cases, 2 steps, linvt and mu2 (a smoke run)."
        ),
        seeds: int | None = typer.Option(None, "--seeds", help="Seeds per row (default 3)."),
        presets: str | None = typer.Option(
            None,
            "--presets",
            help="Comma list (default spp,perceiver,linvt,linvt+rpe,linvt+dts,linvt+dmtp,mu2).",
        ),
        dpo: bool | None = typer.Option(
            None, "--dpo/--no-dpo", help="Add the mu2 + DPO row (default on)."
        ),
        data: str | None = typer.Option(
            None, "--data", help="procedural | real | both (default both)."
        ),
        out: Path | None = typer.Option(
            None, "--out", help="Output folder (default runs/bench-ablation); resumes."
        ),
        metrics: str | None = typer.Option(
            None, "--metrics", help="Comma list of bleu,rouge,meteor,bertscore,green (all)."
        ),
        config: Path | None = typer.Option(
            None,
            "--config",
            "-c",
            help="YAML of AblationConfig fields, layered on the profile (--profile).",
        ),
        overrides: list[str] = typer.Option(
            [], "--set", help="Alias of a positional KEY=VALUE of AblationConfig (repeatable)."
        ),
        positional: list[str] = overrides_arg(
            "Overrides, e.g. cases=100 or sft.max_steps=200 (a recipe key of a stage)."
        ),
        quiet: bool = typer.Option(
            False, "--quiet", "-q", help="Warnings only; no data, prediction and scoring bars."
        ),
    ) -> None:
        """Train every preset with one budget, score the reports, write the tables."""
        from mu2.extras import require

        require("train", "mu2 bench ablation")
        require("eval", "mu2 bench ablation")
        flags = {
            "seeds": seeds,
            "presets": presets.split(",") if presets else None,
            "dpo": dpo,
            "data": data,
            "out": str(out) if out is not None else None,
            "metrics": metrics.split(",") if metrics else None,
        }
        cfg = resolve_config(config, flags, merge(positional, overrides), quick, profile)
        configure_logging(not quiet)
        from mu2.bench.ablation import run_ablation

        result = run_ablation(cfg, progress=not quiet)
        print(result.files["table"].read_text(), end="")
        for key, reason in result.skipped.items():
            print(f"note: {key}: {reason}")
        print("wrote " + ", ".join(str(p) for p in result.files.values()))

    @bench.command("table", context_settings=_EXTRA)
    def table(
        out: Path = typer.Option(..., "--out", help="An ablation output folder."),
    ) -> None:
        """Rebuild table.md, table.csv, results.json and the plots from the metrics files."""
        from mu2.bench.config import AblationConfig
        from mu2.bench.plot import plot_ablation
        from mu2.bench.table import build_tables, write_tables
        from mu2.config import load_config

        if not (out / "config.json").is_file():
            raise Mu2Error(
                "not an ablation output folder (no config.json)",
                path=str(out),
                fix="pass the --out of a `mu2 bench ablation` run",
            )
        cfg = load_config(AblationConfig, out / "config.json")
        tables = build_tables(out, cfg)
        files = write_tables(tables, out)
        files.update(plot_ablation(tables, out))
        print(files["table"].read_text(), end="")
        print("wrote " + ", ".join(str(p) for p in files.values()))

    @bench.command("tokenizer", context_settings=_EXTRA)
    def tokenizer(
        quick: bool = typer.Option(
            False, "--quick", help="mu2 and linvt, 1 seed, single-token lesions, few steps."
        ),
        seeds: int | None = typer.Option(None, "--seeds", help="Seeds per row (default 3)."),
        rows: str | None = typer.Option(
            None, "--rows", help="Comma list of presets (default all, plus mu2-noq)."
        ),
        steps: int | None = typer.Option(None, "--steps", help="Training steps per row."),
        out: Path = typer.Option(
            Path("runs/bench-tokenizer"), "--out", help="Output folder (results.json, table.md)."
        ),
        set_: list[str] = typer.Option(
            [], "--set", help="Alias of a positional KEY=VALUE of TokenBenchConfig (repeatable)."
        ),
        positional: list[str] = overrides_arg("TokenBenchConfig overrides, e.g. lesion_amplitude=0.8."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No per-row progress lines."),
        report: Path | None = typer.Option(
            None, "--report", help="Only print the tables and verdicts of a saved results.json."
        ),
    ) -> None:
        """Tokenizer-level benchmark: planted lesions in named regions, one readout, one budget."""
        from mu2.bench.tokenizer_bench import TokenBenchConfig, markdown, quick_values
        from mu2.bench.tokenizer_bench.run import load_result, run_benchmark, save_result
        from mu2.config import apply_overrides, from_dict

        if report is not None:  # re-score saved per-item results, no training
            print(markdown(load_result(report)), end="")
            return
        overrides = merge(positional, set_)
        flags = {
            k: v
            for k, v in {
                "seeds": seeds,
                "rows": rows.split(",") if rows else None,
                "steps": steps,
            }.items()
            if v is not None
        }
        explicit = set(flags) | {o.split("=", 1)[0] for o in overrides}
        base = quick_values(explicit) if quick else {}
        data = apply_overrides({**base, **flags}, overrides)
        cfg = from_dict(TokenBenchConfig, data, where="bench tokenizer")
        configure_logging(not quiet)
        result = run_benchmark(cfg, progress=not quiet)
        path = save_result(result, out)
        text = markdown(result.to_json())
        (out / "table.md").write_text(text)
        print(text, end="")
        print(f"wrote {path}, {out / 'table.md'}")

    _ = (ablation, table, tokenizer)

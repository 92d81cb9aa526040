"""``mu2 data``: the synthetic CT benchmark, converters of the real data sets, a checker."""

from __future__ import annotations

import time
from pathlib import Path

import typer
import yaml

from mu2.errors import Mu2Error

FORMAT_HELP = "amos-mm | ct-rate | abdomenatlas | m3d-cap | unified"


def _synth_command(data_app: typer.Typer) -> None:
    @data_app.command("synth")
    def synth(
        out: Path = typer.Option(..., "--out", help="Output folder (images/, gt/, *.jsonl)."),
        n: int = typer.Option(200, "--n", help="Number of cases."),
        seed: int = typer.Option(0, "--seed", help="Seed: the same seed gives identical files."),
        size: str = typer.Option("tiny", "--size", help="Grid: tiny (64 x 64) | paper (256-512)."),
        preset: str = typer.Option(
            "tiny", "--preset", help="Findings: tiny (large, learnable) | hard (realistic)."
        ),
        anatomy: str = typer.Option("procedural", "--anatomy", help="procedural | real."),
        config: Path | None = typer.Option(None, "--config", help="YAML of SynthConfig fields."),
        overrides: list[str] = typer.Option([], "--set", help="key=value override (repeatable)."),
        split: str | None = typer.Option(
            None, "--split", help="train,val,test shares, e.g. 0.8,0.1,0.1"
        ),
        holdout_combos: str = typer.Option(
            "",
            "--holdout-combos",
            help="Finding pairs kept out of train, only in test_generalisation.jsonl "
            "(comma-separated, e.g. splenomegaly+renal_cyst).",
        ),
        workers: int | None = typer.Option(
            None, "--workers", help="Processes (default: all cores)."
        ),
        save_labels: bool = typer.Option(
            False, "--save-labels", help="Also write organ label maps."
        ),
        quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
    ) -> None:
        """Generate the synthetic CT benchmark: volumes, ground truth, train/val/test JSONL."""
        from mu2.data.synthetic.synth import synthesize
        from mu2.data.synthetic.synth_config import make_config

        base = None
        if config is not None:
            if not config.is_file():
                raise Mu2Error("config file not found", path=str(config))
            try:
                base = yaml.safe_load(config.read_text()) or {}
            except yaml.YAMLError:
                raise Mu2Error("not valid YAML", path=str(config)) from None
            if not isinstance(base, dict):
                raise Mu2Error("config must be a YAML mapping", path=str(config))
        extra = list(overrides)
        if split:
            extra.append(f"split=[{split}]")
        if holdout_combos:
            extra.append(f"holdout_combos=[{holdout_combos}]")
        cfg = make_config(preset, size, anatomy, extra, base)
        t0 = time.perf_counter()
        manifest = synthesize(
            out,
            n,
            seed,
            cfg,
            workers=workers,
            progress=not quiet,
            save_labels=save_labels,
            preset=preset,
            size=size,
        )
        parts = ", ".join(
            f"{k} {v['cases']} cases / {v['rows']} rows" for k, v in manifest["splits"].items()
        )
        print(f"wrote {n} cases to {out} in {time.perf_counter() - t0:.1f} s: {parts}")


def _convert_command(data_app: typer.Typer) -> None:
    @data_app.command("convert")
    def convert(
        in_path: Path = typer.Argument(..., metavar="IN", help="Data set file or folder."),
        fmt: str = typer.Option(..., "--format", help=FORMAT_HELP),
        out: Path = typer.Option(..., "--out", help="Output unified JSONL."),
        split: str | None = typer.Option(
            None, "--split", help="amos-mm / m3d-cap: one list of the JSON."
        ),
        reports: Path | None = typer.Option(
            None, "--reports", help="ct-rate / abdomenatlas: report CSV."
        ),
        metadata: Path | None = typer.Option(None, "--metadata", help="ct-rate: metadata CSV."),
        hu: str = typer.Option(
            "auto", "--hu", help="ct-rate: are volumes HU already? auto | yes | no."
        ),
        id_column: str | None = typer.Option(
            None, "--id-column", help="abdomenatlas: case id column."
        ),
        report_column: str | None = typer.Option(
            None, "--report-column", help="abdomenatlas: report text column."
        ),
        skip_missing: bool = typer.Option(
            False, "--skip-missing", help="Skip rows whose volume is missing instead of failing."
        ),
    ) -> None:
        """Convert a real data set (its own layout) to the unified JSONL."""
        from mu2.data import adapters
        from mu2.data.schema import write_jsonl

        out = out.absolute()
        if fmt == "amos-mm":
            conv = adapters.convert_amos_mm(in_path, out, split)
        elif fmt == "ct-rate":
            conv = adapters.convert_ct_rate(in_path, out, reports, metadata, hu, skip_missing)
        elif fmt == "abdomenatlas":
            conv = adapters.convert_abdomenatlas(
                in_path, out, reports, id_column, report_column, skip_missing
            )
        elif fmt == "m3d-cap":
            conv = adapters.convert_m3d_cap(in_path, out, split)
        elif fmt == "unified":
            conv = adapters.convert_unified(in_path, out)
        else:
            raise Mu2Error(f"unknown --format '{fmt}'", fix=f"use one of {FORMAT_HELP}")
        if not conv.records:
            raise Mu2Error(
                "no rows converted",
                path=str(in_path),
                fix=f"check --format (got {fmt}) and the layout"
                + (f"; skipped: {conv.skipped[0]}" if conv.skipped else ""),
            )
        write_jsonl(conv.records, out)
        cases = len({r.case_id for r in conv.records})
        print(
            f"wrote {len(conv.records)} rows ({cases} cases) to {out}; skipped {len(conv.skipped)}"
        )
        for s in conv.skipped[:10]:
            print(f"  skipped: {s}")


def _check_command(data_app: typer.Typer) -> None:
    @data_app.command("check")
    def check(
        path: Path = typer.Argument(
            ...,
            metavar="FILE.jsonl",
            help="A unified JSONL (its sibling train/val/test files are checked too).",
        ),
        quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
    ) -> None:
        """Check images readable, answers non-empty, no case in two splits (exit 1 on problems)."""
        from mu2.data.check import check_dataset

        res = check_dataset(path, progress=not quiet)
        if res.ok:
            print(res.summary())
            return
        print(f"{len(res.problems)} problem(s) in {', '.join(str(f) for f in res.files)}:")
        for p in res.problems:
            print(f"  - {p}")
        raise typer.Exit(1)


def _stats_command(data_app: typer.Typer) -> None:
    @data_app.command("stats")
    def stats(
        folder: Path = typer.Argument(
            ..., metavar="OUT", help="A folder written by `mu2 data synth`."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    ) -> None:
        """Per-finding contrast-to-noise ratio and size in voxels of a synthetic data set."""
        import json

        from mu2.data.synthetic.stats import finding_stats, markdown_table

        n, rows = finding_stats(folder)
        if as_json:
            print(json.dumps({"cases": n, "kinds": rows}, indent=1))
            return
        print(f"{n} cases")
        print(markdown_table(rows))


def make_data_app() -> typer.Typer:
    data_app = typer.Typer(
        help="Data: the synthetic CT benchmark, converters of real data sets, checks.",
        no_args_is_help=True,
    )
    _synth_command(data_app)
    _convert_command(data_app)
    _check_command(data_app)
    _stats_command(data_app)
    from mu2.cli.data_augment import add_augment_command

    add_augment_command(data_app)
    return data_app


def register(app: typer.Typer) -> None:
    app.add_typer(make_data_app(), name="data")

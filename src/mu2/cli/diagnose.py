"""``mu2 diagnose``: checks of what a trained model does, beyond its report scores.

mu2 diagnose question-dependence --data SYNTH_DIR [--model DIR] [--split test] [--limit N]
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from mu2.errors import Mu2Error

_EXTRA = {"help_option_names": ["-h", "--help"]}


def register(app: typer.Typer) -> None:
    diagnose = typer.Typer(
        help="Diagnostics of a trained model (question dependence of its heat maps).",
        no_args_is_help=True,
    )
    app.add_typer(diagnose, name="diagnose")

    @diagnose.command("question-dependence", context_settings=_EXTRA)
    def question_dependence_command(
        data: Path = typer.Option(
            ..., "--data", help="A `mu2 data synth` folder (rows with case_id, image, region)."
        ),
        model: Path | None = typer.Option(
            None, "--model", help="Model folder (default: the demo model under $MU2_HOME)."
        ),
        split: str = typer.Option("test", "--split", help="Split file of --data."),
        limit: int | None = typer.Option(None, "--limit", help="At most this many scans."),
        out: Path | None = typer.Option(None, "--json", help="Also write the numbers as JSON."),
    ) -> None:
        """Heat-map correlation and visual-token cosine under different region questions,
        and the share of each region question's heat inside its region."""
        from mu2.generate.home import resolve_model_dir
        from mu2.generate.question_dependence import question_dependence, split_scans
        from mu2.model import Mu2ForConditionalGeneration

        if limit is not None and limit < 1:
            raise Mu2Error(f"--limit {limit}: must be >= 1")
        scans = split_scans(data, split)
        model_dir = resolve_model_dir(model)
        net = Mu2ForConditionalGeneration.from_pretrained(model_dir).eval()
        result = question_dependence(net, net.processor, scans, limit)
        print(result.table(), end="")
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            payload = {
                "model": str(model_dir),
                "summary": result.summary(),
                "scans": [s.__dict__ for s in result.scans],
            }
            out.write_text(json.dumps(payload, indent=1))
            print(f"wrote {out}")

    _ = question_dependence_command

"""``mu2 diagnose``: checks of what a trained model does, beyond its report scores.

mu2 diagnose question-dependence --data SYNTH_DIR [--model DIR] [--split test] [--limit N]
mu2 diagnose heatmap-localisation --data SYNTH_DIR [--model DIR] [--split test] [--limit N]
mu2 diagnose image-use --data SYNTH_DIR [--model DIR] [--split test] [--probe-train N]
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from mu2.errors import Mu2Error

_EXTRA = {"help_option_names": ["-h", "--help"]}


def register(app: typer.Typer) -> None:
    diagnose = typer.Typer(
        help="Diagnostics of a trained model: question dependence, heat-map localisation, "
        "image use (with a shuffled-image control).",
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

    @diagnose.command("heatmap-localisation", context_settings=_EXTRA)
    def heatmap_localisation_command(
        data: Path = typer.Option(
            ..., "--data", help="A `mu2 data synth --save-labels` folder (label maps needed)."
        ),
        model: Path | None = typer.Option(
            None, "--model", help="Model folder (default: the demo model under $MU2_HOME)."
        ),
        split: str = typer.Option("test", "--split", help="Split file of --data."),
        limit: int | None = typer.Option(None, "--limit", help="At most this many cases."),
        device: str = typer.Option("cpu", "--device", help="cpu, cuda or auto."),
    ) -> None:
        """How often the question-to-CT heat map points at the lesion: voxel share in the
        top decile with the mirrored-lesion control, hit rate with its binomial p (JSON)."""
        from mu2.generate.localise import lesion_hit_stats, synth_lesion_cases
        from mu2.generate.pipeline import ReportGenerator

        if limit is not None and limit < 1:
            raise Mu2Error(f"--limit {limit}: must be >= 1")
        cases = synth_lesion_cases(data, split)[:limit]
        generator = ReportGenerator(model, device=device)
        result = lesion_hit_stats(generator, cases, progress=True)
        print(json.dumps({"model": generator.model_id, "split": split, **result.to_dict()}))

    @diagnose.command("image-use", context_settings=_EXTRA)
    def image_use_command(
        data: Path = typer.Option(..., "--data", help="A `mu2 data synth` folder."),
        model: Path | None = typer.Option(
            None, "--model", help="Model folder (default: the demo model under $MU2_HOME)."
        ),
        split: str = typer.Option("test", "--split", help="Split file of --data."),
        probe_train: int = typer.Option(
            300, "--probe-train", help="Training cases the linear probes are fitted on."
        ),
    ) -> None:
        """Does the model read the image? Per-finding accuracy, report loss with its own vs
        shuffled images, linear decodability of each finding before and after the tokenizer."""
        from mu2.extras import require
        from mu2.generate.home import resolve_model_dir

        require("train", "mu2 diagnose image-use")
        from mu2.bench.image_use import image_use

        for line in image_use(resolve_model_dir(model), data, split, probe_train):
            print(line)

    _ = question_dependence_command, heatmap_localisation_command, image_use_command

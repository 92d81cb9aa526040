"""``mu2 report SCAN``: a report, structured findings, heat maps and FHIR for one CT (or many).

The scan is read before the model is loaded, so a bad file fails in a second with one
line; the model is the demo model under $MU2_HOME unless ``--model`` says otherwise.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import typer

from mu2.errors import Mu2Error
from mu2.generate.settings import DEFAULT_MAX_NEW_TOKENS, GenerationSettings

REGION_HELP = "chest, abdomen, pelvis, or all (one answer per region, AMOS-MM style)."


def _check_options(opts: dict[str, Any]) -> None:
    """Collect every conflicting or missing option and raise once."""
    problems = []
    scan, input_list = opts["scan"], opts["input_list"]
    if scan is None and input_list is None:
        problems.append("give a SCAN or --input-list FILE")
    if scan is not None and input_list is not None:
        problems.append("give either a SCAN or --input-list, not both")
    if input_list is not None:
        if opts["out"] is None:
            problems.append("--input-list needs --out DIR for the per-case JSON files")
        for flag in ("heatmap", "heatmap_nifti", "fhir"):
            if opts[flag] is not None:
                problems.append(f"--{flag.replace('_', '-')} writes one file: use it with one SCAN")
    elif opts["out"] is not None:
        problems.append("--out is for --input-list; with one SCAN use --json or the file options")
    if opts["question"] is not None and not opts["question"].strip():
        problems.append("--question is empty")
    if opts["question"] is not None and opts["region"] == "all":
        problems.append("--question and --region all ask different things (drop one)")
    if not opts["sample"]:
        for flag in ("temperature", "top_p"):
            if opts[flag] is not None:
                problems.append(f"--{flag.replace('_', '-')} only applies with --sample")
    if opts["heatmap_nifti"] is not None and not str(opts["heatmap_nifti"]).endswith(
        (".nii", ".nii.gz")
    ):
        problems.append("--heatmap-nifti must end in .nii or .nii.gz")
    if problems:
        raise Mu2Error("; ".join(problems), fix="see `mu2 report --help`")


def _quiet_transformers() -> None:
    """Model loading should not print progress bars or notices around the report."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def _load_scan(scan: Path, allow_non_ct: bool) -> Any:
    from mu2.io import NotCTWarning, load_ct

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", NotCTWarning)
        volume = load_ct(scan, allow_non_ct=allow_non_ct)
    for w in caught:
        if issubclass(w.category, NotCTWarning):
            print(f"mu2: warning: {w.message}", file=sys.stderr)
    return volume


def _print_text(result: Any, outputs: dict[str, str]) -> None:
    from mu2.generate.fhir import describe_finding

    print(result.report or "(empty report)")
    print()
    if result.findings:
        print("structured findings:")
        for f in result.findings:
            print(f"  - {f.organ}: {describe_finding(f)}")
    else:
        print("structured findings: none")
    t = result.timings
    print(
        "time: "
        + ", ".join(f"{k} {v:.2f} s" for k, v in t.items())
        + f"  (model {result.model_id})"
    )
    for kind, path in outputs.items():
        print(f"{kind}: {path}")


def register(app: typer.Typer) -> None:
    @app.command("report")
    def report(
        scan: Path | None = typer.Argument(None, help="NIfTI, DICOM file or folder, .npy or .npz."),
        question: str | None = typer.Option(
            None, "--question", "-q", help="Ask this instead of the default findings question."
        ),
        region: str | None = typer.Option(
            None, "--region", help=REGION_HELP + " Default: the regions the scan covers."
        ),
        model: Path | None = typer.Option(
            None, "--model", help="Model folder (default: the demo model under $MU2_HOME)."
        ),
        device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
        dtype: str | None = typer.Option(None, "--dtype", help="float32, bfloat16 or float16."),
        max_new_tokens: int = typer.Option(
            DEFAULT_MAX_NEW_TOKENS, "--max-new-tokens", help="Longest answer, in tokens."
        ),
        sample: bool = typer.Option(False, "--sample", help="Nucleus sampling instead of greedy."),
        temperature: float | None = typer.Option(
            None, "--temperature", help="With --sample (1.0)."
        ),
        top_p: float | None = typer.Option(None, "--top-p", help="With --sample (1.0)."),
        seed: int = typer.Option(0, "--seed", help="Seed for --sample."),
        as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
        heatmap: Path | None = typer.Option(
            None, "--heatmap", help="Write a heat-map PNG montage."
        ),
        heatmap_nifti: Path | None = typer.Option(
            None, "--heatmap-nifti", help="Write the heat map as NIfTI aligned with the input."
        ),
        fhir: Path | None = typer.Option(None, "--fhir", help="Write a FHIR R4 DiagnosticReport."),
        patient: str | None = typer.Option(
            None, "--patient", help="FHIR subject reference, e.g. Patient/123."
        ),
        allow_non_ct: bool = typer.Option(
            False, "--allow-non-ct", help="Read a DICOM whose Modality is not CT."
        ),
        input_list: Path | None = typer.Option(
            None,
            "--input-list",
            help="Text file with one scan per line (batch mode). Failures go to "
            "OUT/failures.json; exit 0 if every scan was reported, 1 if some failed, 2 if the "
            "list or the options are wrong.",
        ),
        out: Path | None = typer.Option(
            None, "--out", help="Folder for the per-case JSON (batch)."
        ),
    ) -> None:
        """Write a radiology report for a CT scan (or a list of scans)."""
        opts = dict(locals())
        _check_options(opts)
        from mu2.generate.home import resolve_model_dir
        from mu2.generate.pipeline import REGION_CHOICES

        if region is not None and region not in REGION_CHOICES:
            raise Mu2Error(
                f"unknown --region '{region}'", fix=f"choose one of {', '.join(REGION_CHOICES)}"
            )
        model_dir = resolve_model_dir(model)
        gen = {
            "question": question,
            "region": region,
            "max_new_tokens": max_new_tokens,
            "do_sample": sample,
            "temperature": 1.0 if temperature is None else temperature,
            "top_p": 1.0 if top_p is None else top_p,
            "seed": seed,
            "allow_non_ct": allow_non_ct,
        }
        GenerationSettings(max_new_tokens, sample, gen["temperature"], gen["top_p"], seed)
        if input_list is not None:
            _run_batch(model_dir, device, dtype, input_list, out, gen)
            return

        t0 = time.perf_counter()
        volume = _load_scan(scan, allow_non_ct)  # bad input fails here, before the model loads
        load_seconds = time.perf_counter() - t0
        _quiet_transformers()
        from mu2.generate.pipeline import ReportGenerator

        generator = ReportGenerator(model_dir, device=device, dtype=dtype)
        want_heat = heatmap is not None or heatmap_nifti is not None
        gen.pop("allow_non_ct")
        result = generator.report(volume, heatmap=want_heat, load_seconds=load_seconds, **gen)
        outputs = _write_outputs(result, volume, heatmap, heatmap_nifti, fhir, patient)
        if as_json:
            print(json.dumps({**result.to_dict(), "outputs": outputs}, indent=2))
        else:
            _print_text(result, outputs)


def _write_outputs(
    result: Any,
    volume: Any,
    heatmap: Path | None,
    heatmap_nifti: Path | None,
    fhir: Path | None,
    patient: str | None,
) -> dict[str, str]:
    from mu2.generate.fhir import to_fhir
    from mu2.generate.heatmap import save_heatmap_nifti, save_heatmap_png

    outputs: dict[str, str] = {}
    if (heatmap is not None or heatmap_nifti is not None) and result.heatmap is None:
        raise Mu2Error(
            f"model {result.model_id} gives no question-to-CT attribution",
            fix="drop --heatmap/--heatmap-nifti or use a mu2-preset model",
        )
    if heatmap_nifti is not None:
        outputs["heatmap_nifti"] = str(save_heatmap_nifti(volume, result.heatmap, heatmap_nifti))
    if heatmap is not None:
        title = "; ".join(s.question for s in result.sections)
        outputs["heatmap_png"] = str(
            save_heatmap_png(volume.array, result.heatmap, volume.spacing, heatmap, title=title)
        )
    if fhir is not None:
        fhir.parent.mkdir(parents=True, exist_ok=True)
        fhir.write_text(json.dumps(to_fhir(result, patient_ref=patient), indent=2) + "\n")
        outputs["fhir"] = str(fhir)
    return outputs


def _run_batch(
    model_dir: Path, device: str, dtype: str | None, input_list: Path, out: Path, gen: dict
) -> None:
    from mu2.generate.batch import FAILURES_FILE, read_input_list, run_batch
    from mu2.generate.pipeline import ReportGenerator

    scans = read_input_list(input_list)
    _quiet_transformers()
    generator = ReportGenerator(model_dir, device=device, dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # per-case HU warnings would break the progress bar
        result = run_batch(generator, scans, out, progress=True, **gen)
    print(f"wrote {len(result.written)} report(s) to {out}")
    if result.failed:
        listed = out / FAILURES_FILE
        print(f"{len(result.failed)} scan(s) failed (listed in {listed}):", file=sys.stderr)
        for scan, message in result.failed:
            print(f"  {scan}: {message}", file=sys.stderr)
        raise typer.Exit(1)

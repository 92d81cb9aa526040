"""``mu2 report SCAN``: a report, structured findings, heat maps and FHIR for one CT (or many).

The scan is read before the model is loaded, so a bad file fails in a second with one
line; the model is the demo model under $MU2_HOME unless ``--model`` says otherwise.
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import typer

from mu2.errors import Mu2Error
from mu2.generate.batch import DEFAULT_BATCH_SCANS, DEFAULT_WORKERS
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
    try:
        from mu2.generate.scope import check_ask

        check_ask(opts["question"], opts["region"])
    except Mu2Error as err:
        problems.append(err.message)
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


def process_age_s() -> float | None:
    """Seconds since this process started (Linux /proc), so timings include Python start-up
    and imports; None where /proc is not available."""
    try:
        stat = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - int(stat[19]) / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def _load_scan(scan: Path, allow_non_ct: bool) -> Any:
    from mu2.io import NotCTWarning, load_ct
    from mu2.io.content import check_ct_content

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", NotCTWarning)
        volume = load_ct(scan, allow_non_ct=allow_non_ct)
        check_ct_content(volume, allow_non_ct=allow_non_ct)  # refused here, before the model
    for w in caught:
        if issubclass(w.category, NotCTWarning):
            print(f"mu2: warning: {w.message}", file=sys.stderr)
    return volume


def _print_text(result: Any, outputs: dict[str, str]) -> None:
    from mu2.generate.fhir import describe_finding

    print(result.report or "(empty report)")
    print()
    print(f"note: {result.model_note}")
    for w in result.warnings:
        print(f"warning: {w}")
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
            None,
            "--model",
            help="Model folder or Hub repo id (default: the demo model under $MU2_HOME).",
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
            False,
            "--allow-non-ct",
            help="Report on a scan that does not look like CT (MR, label map, blank, DICOM "
            "Modality not CT); every output then carries a warning.",
        ),
        force: bool = typer.Option(
            False,
            "--force",
            help="Ask a --region the scan does not cover or the model card does not list "
            "(with a warning in every output).",
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
        batch_size: int = typer.Option(
            DEFAULT_BATCH_SCANS, "--batch-size", help="Batch: scans decoded together."
        ),
        workers: int = typer.Option(
            DEFAULT_WORKERS, "--workers", help="Batch: threads reading the next scans."
        ),
        num_processes: int = typer.Option(
            1, "--num-processes", help="Batch: processes sharing the list (merged output)."
        ),
        kv_cache: str = typer.Option(
            "dynamic", "--kv-cache", help="dynamic, or static (pre-allocated; compiled on a GPU)."
        ),
    ) -> None:
        """Write a radiology report for a CT scan (or a list of scans)."""
        opts = dict(locals())
        _check_options(opts)
        from mu2.generate.home import resolve_model_dir
        from mu2.generate.shard import BatchJob

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
            "force": force,
        }
        GenerationSettings(max_new_tokens, sample, gen["temperature"], gen["top_p"], seed)
        from mu2.generate.decode import DecodeOptions

        DecodeOptions(cache=kv_cache)  # an unknown --kv-cache fails before the model loads
        if input_list is not None:
            job = BatchJob(str(model_dir), str(input_list), str(out), device, dtype,
                           batch_size, workers, report=gen, kv_cache=kv_cache)  # fmt: skip
            _run_batch(job, num_processes)
            return

        startup = process_age_s()
        t0 = time.perf_counter()
        volume = _load_scan(scan, allow_non_ct)  # bad input fails here, before the model loads
        load_seconds = time.perf_counter() - t0
        t0 = time.perf_counter()
        _quiet_transformers()
        from mu2.generate.pipeline import ReportGenerator

        generator = ReportGenerator(
            model_dir, device=device, dtype=dtype, decode_options=DecodeOptions(cache=kv_cache)
        )
        model_seconds = time.perf_counter() - t0  # imports of torch / transformers + weights
        want_heat = heatmap is not None or heatmap_nifti is not None
        result = generator.report(volume, heatmap=want_heat, load_seconds=load_seconds, **gen)
        _add_process_timings(result, startup, model_seconds)
        outputs = _write_outputs(result, volume, heatmap, heatmap_nifti, fhir, patient)
        if as_json:
            print(json.dumps({**result.to_dict(), "outputs": outputs}, indent=2))
        else:
            _print_text(result, outputs)


def _add_process_timings(result: Any, startup: float | None, model_seconds: float) -> None:
    """Start-up (Python, imports) and model loading join the per-step timings; ``total``
    becomes the wall time of the whole command so far."""
    steps = {k: v for k, v in result.timings.items() if k != "total"}
    head = {"startup": startup} if startup is not None else {}
    result.timings = {**head, "model_load": model_seconds, **steps}
    age = process_age_s()
    result.timings["total"] = age if age is not None else sum(result.timings.values())


def _write_outputs(
    result: Any,
    volume: Any,
    heatmap: Path | None,
    heatmap_nifti: Path | None,
    fhir: Path | None,
    patient: str | None,
) -> dict[str, str]:
    from mu2.generate.outputs import write_outputs

    return write_outputs(result, volume, fhir_path=fhir, heatmap_png=heatmap,
                         heatmap_nifti=heatmap_nifti, patient_ref=patient)  # fmt: skip


def _run_batch(job: Any, num_processes: int) -> None:
    """``--input-list``: one process, ``--num-processes N`` of them, or this process's rank
    of a launcher (torchrun / accelerate launch); the merging process prints the summary."""
    from mu2.generate.batch import FAILURES_FILE, read_input_list
    from mu2.generate.shard import current_shard, run_job, spawn

    if num_processes < 1 or job.batch_size < 1 or job.workers < 0:
        raise Mu2Error(
            "--num-processes and --batch-size must be >= 1, --workers >= 0",
            fix="e.g. --batch-size 8 --workers 2 --num-processes 2",
        )
    read_input_list(job.input_list)  # a bad list fails here, before any model loads
    shard = current_shard()
    _quiet_transformers()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # per-case HU warnings would break the progress bar
        if num_processes > 1 and shard.count == 1:
            Path(job.out).mkdir(parents=True, exist_ok=True)
            result = spawn(job, num_processes)
        else:
            result = run_job(job, shard, progress=shard.index == 0)
    if result is None:  # a rank that did not merge: rank 0 prints the summary
        return
    print(f"wrote {len(result.written)} report(s) to {job.out}")
    if result.failed:
        listed = Path(job.out) / FAILURES_FILE
        print(f"{len(result.failed)} scan(s) failed (listed in {listed}):", file=sys.stderr)
        for scan, message in result.failed:
            print(f"  {scan}: {message}", file=sys.stderr)
        raise typer.Exit(1)

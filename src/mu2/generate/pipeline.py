"""``ReportGenerator``: a trained mu2 model folder -> reports for CT scans.

The model is loaded once; each ``report`` call reads a scan, prepares its frames, encodes
them (vision tower once, mu2 tokenizer per question, with the question-to-patch attribution
when a heat map is wanted) and decodes one answer per question. ``report_cases`` does the
same for many prepared scans at once: all their questions are decoded as batches by
:func:`mu2.generate.decode.decode`, the one decode path of the package. Timings are split
into load / prepare / encode / generate so slow steps are visible.
"""

from __future__ import annotations

import logging
import pickle
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError

from mu2.device import resolve_device, synchronize
from mu2.errors import Mu2Error
from mu2.findings.catalogue import Finding
from mu2.generate.coverage import heatmap_peaks, scan_coverage
from mu2.generate.decode import DecodeOptions, decode
from mu2.generate.heatmap import attribution_to_input
from mu2.generate.home import resolve_model_dir
from mu2.generate.regions import default_question
from mu2.generate.result import ReportResult, Section
from mu2.generate.scope import (
    check_ask,
    out_of_view_notes,
    plan_regions,
    tidy_findings,
)
from mu2.generate.settings import DEFAULT_MAX_NEW_TOKENS, GenerationSettings
from mu2.io.content import check_ct_content

log = logging.getLogger(__name__)



@dataclass
class PreparedCase:
    """A scan read and prepared, with its questions planned: the input of ``report_cases``
    (made by ``prepare_case``, which a background worker may run while the model decodes)."""

    volume: Any
    sections: list[Section]
    prepared: Any  # mu2.preprocess.Prepared: frames (T, K, H, W) and the mapping back
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    """What the reader of the report must know (model card, non-CT content, forced regions)."""


def _torch_dtype(dtype: str | torch.dtype | None) -> torch.dtype | None:
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    value = getattr(torch, str(dtype), None)
    if not isinstance(value, torch.dtype):
        raise Mu2Error(f"unknown dtype '{dtype}'", fix="use float32, bfloat16 or float16")
    return value


def _first_line(err: BaseException, limit: int = 120) -> str:
    return (str(err).splitlines() or [""])[0][:limit]


class ReportGenerator:
    """Loads a mu2 model folder once and writes reports for CT scans.

    ``model_dir`` None means the demo model under ``$MU2_HOME`` (see :mod:`mu2.generate.home`).
    ``dtype`` None keeps the saved weights' precision on CPU (float32) and is bfloat16 on
    a GPU. ``decode_options``: batch size and KV cache of :func:`mu2.generate.decode.decode`.
    """

    def __init__(
        self,
        model_dir: str | Path | None = None,
        device: str | torch.device = "cpu",
        dtype: str | torch.dtype | None = None,
        decode_options: DecodeOptions | None = None,
    ) -> None:
        from mu2.model import Mu2ForConditionalGeneration

        model_dir = resolve_model_dir(model_dir)
        t0 = time.perf_counter()
        if dtype is None and resolve_device(device).type == "cuda":
            dtype = "bfloat16"  # GPU default: half the memory traffic of float32 decoding
        kwargs = {"dtype": _torch_dtype(dtype)} if dtype is not None else {}
        resolve_device(device)  # a bad device fails before the (slow) load
        try:
            model = Mu2ForConditionalGeneration.from_pretrained(model_dir, **kwargs)
        except Mu2Error:
            raise
        except (
            OSError,
            EOFError,
            ValueError,
            KeyError,
            TypeError,
            RuntimeError,
            SafetensorError,
            pickle.UnpicklingError,  # a pytorch_model.bin that weights_only refuses to unpickle
        ) as err:
            # A folder that is not (or no longer) a complete saved model: one line, not a trace.
            raise Mu2Error(
                f"cannot load the model ({type(err).__name__}: {_first_line(err)})",
                path=str(model_dir),
                fix="pass a folder written by `mu2 train` or `mu2 demo`",
            ) from err
        self._setup(model, device, model_dir.name, model_dir)
        self.decode_options = decode_options or DecodeOptions()
        synchronize(self.device)
        self.load_seconds = time.perf_counter() - t0
        log.info("loaded %s in %.2f s", model_dir, self.load_seconds)

    @classmethod
    def from_model(
        cls,
        model: Any,
        device: str | torch.device = "cpu",
        name: str = "in-memory",
        decode_options: DecodeOptions | None = None,
    ) -> ReportGenerator:
        """Wrap a model already in memory (e.g. right after training, or a random-init
        paper-size model for latency checks) without saving and reloading it. The model is
        moved to ``device`` and put in eval mode."""
        self = cls.__new__(cls)
        self._setup(model, device, name, None)
        self.decode_options = decode_options or DecodeOptions()
        self.load_seconds = 0.0
        return self

    def _setup(
        self, model: Any, device: str | torch.device, name: str, model_dir: Path | None
    ) -> None:
        from mu2.model import Mu2Processor
        from mu2.model.card import model_card_of
        from mu2.preprocess import prep_config

        self.model_dir = model_dir
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        processor = getattr(model, "processor", None)
        if processor is None:
            if model_dir is None:
                raise Mu2Error(
                    "the model has no processor attached", fix="build it with mu2.model.build"
                )
            processor = Mu2Processor.from_pretrained(model_dir)
        self.processor = processor
        cfg = model.config
        self.prep_cfg = prep_config(str(cfg.prep))
        self.model_id = f"{name} ({cfg.preset}, {cfg.size})"
        self.card = model_card_of(model, model_dir, name)

    # -- questions -------------------------------------------------------------------------
    def plan_questions(
        self,
        volume: Any,
        question: str | None,
        region: str | None,
        force: bool = False,
        warnings: list[str] | None = None,
    ) -> list[Section]:
        """Which questions to ask: the user's, or one per region that the scan covers and
        the model card lists (see :mod:`mu2.generate.scope`); plan warnings go to
        ``warnings``."""
        question, region = check_ask(question, region)
        if question is not None:
            return [Section(question=question, text="", region=region)]
        covered = scan_coverage(volume).regions
        try:
            plan = plan_regions(region, covered, self.card.regions, force)
        except Mu2Error as err:  # the refusal names the scan it is about
            where = volume.meta.get("path")
            if err.path is not None or not where:
                raise
            message = str(err).removesuffix(f" -- fix: {err.fix}" if err.fix else "")
            raise Mu2Error(message, path=str(where), fix=err.fix) from None
        if warnings is not None:
            warnings.extend(plan.warnings)
        return [Section(question=default_question(r), text="", region=r) for r in plan.regions]

    # -- one scan ---------------------------------------------------------------------------
    def report(
        self,
        scan: str | Path | Any,
        question: str | None = None,
        region: str | None = None,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        do_sample: bool = False,
        temperature: float = 1.0,
        top_p: float = 1.0,
        seed: int = 0,
        heatmap: bool = False,
        min_new_tokens: int = 0,
        allow_non_ct: bool = False,
        load_seconds: float = 0.0,
        force: bool = False,
    ) -> ReportResult:
        """Report on one scan (path or an already loaded ``CTVolume``).

        ``region``: None = the regions the scan covers (see :mod:`mu2.generate.regions`),
        ``"all"`` = chest, abdomen and pelvis (AMOS-MM style), or one region.
        ``load_seconds``: time the caller already spent reading ``scan`` when it passes a
        loaded volume, so the load / prepare / encode / generate split stays complete.
        ``allow_non_ct``: report on a volume that does not look like CT (with a warning);
        ``force``: ask a named region outside the scan or the model card (with a warning).
        """
        settings = GenerationSettings(
            max_new_tokens, do_sample, temperature, top_p, seed, min_new_tokens
        )
        case = self.prepare_case(scan, question, region, allow_non_ct, load_seconds, force)
        return self.report_cases([case], settings, heatmap=heatmap)[0]

    def prepare_case(
        self,
        scan: str | Path | Any,
        question: str | None = None,
        region: str | None = None,
        allow_non_ct: bool = False,
        load_seconds: float = 0.0,
        force: bool = False,
    ) -> PreparedCase:
        """Read (unless ``scan`` is a loaded ``CTVolume``), plan the questions, prepare frames.

        Needs no model: thread-safe, so a batch runs it for the next scans while decoding."""
        from mu2.io import CTVolume, load_ct
        from mu2.preprocess import prepare

        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        volume = scan if isinstance(scan, CTVolume) else load_ct(scan, allow_non_ct=allow_non_ct)
        timings["load"] = time.perf_counter() - t0 + float(load_seconds)
        check_ct_content(volume, allow_non_ct=allow_non_ct)  # not CT: refused or warned

        t0 = time.perf_counter()
        card_warning = [w for w in (self.card.warning(),) if w]
        warnings = card_warning + list(volume.meta.get("warnings") or [])
        sections = self.plan_questions(volume, question, region, force, warnings)
        timings["coverage"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        prepared = prepare(volume, self.prep_cfg)
        timings["prepare"] = time.perf_counter() - t0
        return PreparedCase(volume, sections, prepared, timings, warnings)

    def report_cases(
        self,
        cases: Sequence[PreparedCase],
        settings: GenerationSettings | None = None,
        heatmap: bool = False,
    ) -> list[ReportResult]:
        """Reports for prepared scans; all their questions decoded together in batches of
        ``self.decode_options.batch_size``. The encode / generate seconds of a shared batch
        are split over its cases by their number of questions.

        Sampled answers are drawn per case from ``settings.seed``, as one ``report`` call
        draws them, so a scan's sampled report does not depend on its batch neighbours."""
        settings = settings or GenerationSettings()
        rows = [(c, s) for c in cases for s in c.sections]
        frames = [c.prepared.frames for c, _ in rows]  # one tensor per case: encoded once
        questions = [s.question for _, s in rows]
        if settings.do_sample:
            parts = [self._decode([c.prepared.frames] * len(c.sections),
                                  [s.question for s in c.sections], settings, heatmap)
                     for c in cases]  # fmt: skip
        else:
            parts = [self._decode(frames, questions, settings, heatmap)]
        texts = [t for p in parts for t in p.texts]
        counts = [n for p in parts for n in p.new_tokens]
        attrs = [a for p in parts for a in (p.attribution or [None] * len(p.texts))]
        enc_s = sum(p.encode_seconds for p in parts)
        gen_s = sum(p.generate_seconds for p in parts)
        for (_, section), text in zip(rows, texts, strict=True):
            section.text = text.strip()
        results, start = [], 0
        for case in cases:
            n = len(case.sections)
            share = n / max(len(rows), 1)
            timings = dict(case.timings)
            timings["encode"], timings["generate"] = enc_s * share, gen_s * share
            results.append(
                self._result(case, settings, timings, counts[start : start + n],
                             attrs[start : start + n] if heatmap else [])
            )  # fmt: skip
            start += n
        return results

    def _decode(
        self, frames: list[Any], questions: list[str], settings: GenerationSettings, heat: bool
    ) -> Any:
        return decode(
            self.model,
            self.processor,
            frames,
            questions,
            settings=settings,
            options=self.decode_options,
            device=self.device,
            attribution=heat,
            seed=settings.seed,
        )

    def _result(
        self,
        case: PreparedCase,
        settings: GenerationSettings,
        timings: dict[str, float],
        new_tokens: list[int],
        attribution: list[Any],
    ) -> ReportResult:
        prepared, sections = case.prepared, case.sections
        volume, warnings = case.volume, case.warnings
        heat = None
        if attribution and all(a is not None for a in attribution):
            t0 = time.perf_counter()
            # (B, T, gz, gy, gx) -> (X, Y, Z): averaged on the frame grid, one input-sized array
            heat = attribution_to_input(attribution, prepared)
            timings["heatmap"] = time.perf_counter() - t0  # patches -> voxels of the input
        findings, notes = self._tidy(volume, sections, warnings)
        timings["total"] = sum(timings.values())

        return ReportResult(
            sections=sections,
            findings=findings,
            timings=timings,
            model_id=self.model_id,
            input=_input_summary(case.volume, prepared),
            generation={
                **settings.hf_kwargs(),
                **({"seed": settings.seed} if settings.do_sample else {}),
                "new_tokens": new_tokens,
            },
            heatmap=heat,
            card=self.card.to_dict(),
            coverage=scan_coverage(volume).to_dict(),
            warnings=warnings,
            heatmap_peaks=heatmap_peaks(volume, heat) if heat is not None else {},
        )

    @staticmethod
    def _tidy(volume: Any, sections: list[Section], warnings: list[str]) -> tuple:
        """Findings merged across sections, organs outside the field of view dropped."""
        from mu2.findings.extract import extract_findings

        per_section = [(s.region, extract_findings(s.text, region=s.region)) for s in sections]
        coverage = scan_coverage(volume)
        findings, tidy_warnings, notes = tidy_findings(per_section, coverage.organs)
        for s in sections:
            said = notes.get(s.region, [])
            s.notes = said + out_of_view_notes(s.text, coverage.organs, said)
        warnings.extend(tidy_warnings)
        return findings, notes

    @staticmethod
    def _findings(sections: list[Section]) -> list[Finding]:
        """Structured findings, read from the text by the offline judge's extractor."""
        from mu2.findings.extract import extract_findings

        out: list[Finding] = []
        for s in sections:
            out.extend(extract_findings(s.text, region=s.region))
        return out


def _input_summary(volume: Any, prepared: Any) -> dict[str, Any]:
    meta = volume.meta
    return {
        "path": meta.get("path"),
        "format": meta.get("format"),
        "shape": list(volume.shape),
        "source_shape": [int(s) for s in (volume.source_shape or volume.shape)],
        "spacing_mm": [round(float(s), 4) for s in volume.spacing],
        "orientation": meta.get("orientation"),
        "canonical_orientation": meta.get("canonical_orientation", "RAS"),
        "modality": meta.get("modality"),
        "frames": list(prepared.frames.shape),
        "study": {
            k: v
            for k, v in (
                ("uid", (meta.get("series") or {}).get("study_uid")),
                ("datetime", (meta.get("series") or {}).get("study_datetime")),
            )
            if v
        },
        "warnings": list(meta.get("warnings") or []),
    }

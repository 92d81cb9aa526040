"""``ReportGenerator``: a trained mu2 model folder -> reports for CT scans.

The model is loaded once; each ``report`` call reads a scan, prepares its frames, encodes
them once for all questions (vision tower + mu2 tokenizer, with the question-to-patch
attribution when a heat map is wanted) and decodes one answer per question. Timings are
split into load / prepare / encode / generate so slow steps are visible.
"""

from __future__ import annotations

import inspect
import logging
import pickle
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError

from mu2.errors import Mu2Error
from mu2.findings.catalogue import REGIONS, Finding
from mu2.generate.heatmap import attribution_to_input
from mu2.generate.home import resolve_model_dir
from mu2.generate.regions import default_question, detect_regions
from mu2.generate.result import ReportResult, Section
from mu2.generate.settings import DEFAULT_MAX_NEW_TOKENS, GenerationSettings

log = logging.getLogger(__name__)

REGION_CHOICES: tuple[str, ...] = (*REGIONS, "all")


@dataclass
class _Answers:
    texts: list[str]
    attribution: torch.Tensor | None  # (B, T, gz, gy, gx)
    encode_seconds: float
    generate_seconds: float
    new_tokens: list[int]


def _torch_dtype(dtype: str | torch.dtype | None) -> torch.dtype | None:
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    value = getattr(torch, str(dtype), None)
    if not isinstance(value, torch.dtype):
        raise Mu2Error(f"unknown dtype '{dtype}'", fix="use float32, bfloat16 or float16")
    return value


def _device(device: str | torch.device) -> torch.device:
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise Mu2Error(f"unknown device '{device}'", fix="use cpu or cuda (cuda:N)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise Mu2Error(
            "device 'cuda' asked for, but no CUDA GPU is available", fix="use --device cpu"
        )
    return dev


def _first_line(err: BaseException, limit: int = 120) -> str:
    return (str(err).splitlines() or [""])[0][:limit]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class ReportGenerator:
    """Loads a mu2 model folder once and writes reports for CT scans.

    ``model_dir`` None means the demo model under ``$MU2_HOME`` (see :mod:`mu2.generate.home`).
    ``dtype`` None keeps the saved weights' precision on CPU (float32).
    """

    def __init__(
        self,
        model_dir: str | Path | None = None,
        device: str | torch.device = "cpu",
        dtype: str | torch.dtype | None = None,
    ) -> None:
        from mu2.model import Mu2ForConditionalGeneration

        model_dir = resolve_model_dir(model_dir)
        t0 = time.perf_counter()
        kwargs = {"dtype": _torch_dtype(dtype)} if dtype is not None else {}
        _device(device)  # a bad device fails before the (slow) load
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
        _sync(self.device)
        self.load_seconds = time.perf_counter() - t0
        log.info("loaded %s in %.2f s", model_dir, self.load_seconds)

    @classmethod
    def from_model(
        cls, model: Any, device: str | torch.device = "cpu", name: str = "in-memory"
    ) -> ReportGenerator:
        """Wrap a model already in memory (e.g. right after training, or a random-init
        paper-size model for latency checks) without saving and reloading it. The model is
        moved to ``device`` and put in eval mode."""
        self = cls.__new__(cls)
        self._setup(model, device, name, None)
        self.load_seconds = 0.0
        return self

    def _setup(
        self, model: Any, device: str | torch.device, name: str, model_dir: Path | None
    ) -> None:
        from mu2.model import Mu2Processor
        from mu2.preprocess import prep_config

        self.model_dir = model_dir
        self.device = _device(device)
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

    # -- questions -------------------------------------------------------------------------
    @staticmethod
    def plan_questions(volume: Any, question: str | None, region: str | None) -> list[Section]:
        """Which questions to ask: the user's, one per chosen region, or per detected region."""
        if region is not None and region not in REGION_CHOICES:
            raise Mu2Error(
                f"unknown region '{region}'", fix=f"choose one of {', '.join(REGION_CHOICES)}"
            )
        if question is not None:
            if not question.strip():
                raise Mu2Error(
                    "empty --question", fix="ask e.g. 'Is there a renal cyst in this CT?'"
                )
            if region == "all":
                raise Mu2Error(
                    "--question and --region all ask different things",
                    fix="drop --question for one answer per region, or drop --region",
                )
            return [Section(question=question.strip(), text="", region=region)]
        if region == "all":
            regions = list(REGIONS)
        elif region is not None:
            regions = [region]
        else:
            regions = detect_regions(volume.array, volume.spacing)
        return [Section(question=default_question(r), text="", region=r) for r in regions]

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
    ) -> ReportResult:
        """Report on one scan (path or an already loaded ``CTVolume``).

        ``region``: None = the regions the scan covers (see :mod:`mu2.generate.regions`),
        ``"all"`` = chest, abdomen and pelvis (AMOS-MM style), or one region.
        ``load_seconds``: time the caller already spent reading ``scan`` when it passes a
        loaded volume, so the load / prepare / encode / generate split stays complete.
        """
        from mu2.io import CTVolume, load_ct
        from mu2.preprocess import prepare

        settings = GenerationSettings(
            max_new_tokens, do_sample, temperature, top_p, seed, min_new_tokens
        )
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        volume = scan if isinstance(scan, CTVolume) else load_ct(scan, allow_non_ct=allow_non_ct)
        timings["load"] = time.perf_counter() - t0 + float(load_seconds)

        sections = self.plan_questions(volume, question, region)
        t0 = time.perf_counter()
        prepared = prepare(volume, self.prep_cfg)
        timings["prepare"] = time.perf_counter() - t0

        ans = self._answer(prepared.frames, [s.question for s in sections], settings, heatmap)
        timings["encode"], timings["generate"] = ans.encode_seconds, ans.generate_seconds
        for s, text in zip(sections, ans.texts, strict=True):
            s.text = text.strip()
        attribution = ans.attribution

        heat = None
        if attribution is not None:
            t0 = time.perf_counter()
            # (B, T, gz, gy, gx) -> (X, Y, Z): averaged on the frame grid, one input-sized array
            heat = attribution_to_input(attribution, prepared)
            timings["heatmap"] = time.perf_counter() - t0  # patches -> voxels of the input
        timings["total"] = sum(timings.values())

        return ReportResult(
            sections=sections,
            findings=self._findings(sections),
            timings=timings,
            model_id=self.model_id,
            input=_input_summary(volume, prepared),
            generation={
                **settings.hf_kwargs(),
                **({"seed": settings.seed} if settings.do_sample else {}),
                "new_tokens": ans.new_tokens,
            },
            heatmap=heat,
        )

    @staticmethod
    def _findings(sections: list[Section]) -> list[Finding]:
        """Structured findings, read from the text by the offline judge's extractor."""
        from mu2.findings.extract import extract_findings

        out: list[Finding] = []
        for s in sections:
            out.extend(extract_findings(s.text, region=s.region))
        return out

    @torch.inference_mode()
    def _answer(
        self,
        frames: torch.Tensor,
        questions: list[str],
        settings: GenerationSettings,
        attribution: bool,
    ) -> _Answers:
        """frames (T, K, H, W) + questions -> answers, attribution (B, T, gz, gy, gx), seconds."""
        model, proc = self.model, self.processor
        b = len(questions)
        batch = {k: v.to(self.device) for k, v in proc(questions).items()}
        # One volume asked B questions: (T, K, H, W) -> (1, T, K, H, W) -> (B, T, K, H, W)
        pixel_values, frame_mask = proc.pad_frames([frames])
        pixel_values = pixel_values.to(self.device).expand(b, *pixel_values.shape[1:])
        frame_mask = frame_mask.to(self.device).expand(b, -1)

        t0 = time.perf_counter()
        enc = model.encode_images(
            pixel_values,
            frame_mask,
            batch["question_ids"],
            batch["question_mask"],
            return_attribution=attribution,
        )
        _sync(self.device)
        enc_s = time.perf_counter() - t0

        tok = proc.tokenizer
        kw = settings.hf_kwargs()
        kw.update(pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
        t0 = time.perf_counter()
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            torch.manual_seed(settings.seed)  # sampling draws from torch's RNG; restored after
            new_tokens = _generate_from_encoding(model, enc, batch, **kw)
        _sync(self.device)
        gen_s = time.perf_counter() - t0
        new_tokens = new_tokens.cpu()
        texts = proc.batch_decode(new_tokens, skip_special_tokens=True)
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        counts = [int(n) for n in (new_tokens != pad).sum(dim=1)]  # finished rows are padded
        attr = (
            enc.attribution.float().cpu() if (attribution and enc.attribution is not None) else None
        )
        return _Answers(texts, attr, enc_s, gen_s, counts)


def _generate_from_encoding(
    model: Any, enc: Any, batch: dict[str, torch.Tensor], **gen_kwargs: Any
) -> torch.Tensor:
    """Decode with visual tokens computed once (so encode and generate are timed apart).

    Uses ``model.generate(image_encoding=...)`` when the model offers it; otherwise scatters
    the visual tokens into the prompt embeddings here, as the model's own merge does.
    """
    if "image_encoding" in inspect.signature(model.generate).parameters:
        return model.generate(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            image_encoding=enc,
            **gen_kwargs,
        )
    input_ids, attention_mask = batch["input_ids"], batch["attention_mask"]
    embeds = model.get_input_embeddings()(input_ids)  # (B, L, E)
    is_image = input_ids == model.config.image_token_id  # (B, L)
    counts = is_image.sum(dim=1).tolist()
    if any(c != enc.tokens.shape[1] for c in counts):
        raise Mu2Error(
            f"prompt holds {counts} image placeholders but the encoder gave {enc.tokens.shape[1]}",
            fix="the model folder's processor does not match its weights; re-save the model",
        )
    # (B, Q, E) visual tokens into the (B, L, E) placeholder positions
    embeds = embeds.masked_scatter(
        is_image[..., None].expand_as(embeds), enc.tokens.to(embeds.dtype)
    )
    if not bool(enc.mask.all()):
        attention_mask = attention_mask.clone()
        attention_mask[is_image] = enc.mask.reshape(-1).to(attention_mask.dtype)
    return model.language_model.generate(
        inputs_embeds=embeds, attention_mask=attention_mask, **gen_kwargs
    )


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
        "warnings": list(meta.get("warnings") or []),
    }

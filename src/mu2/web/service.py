"""``ReportService``: the shared model, its queue and the kept results, behind the routes.

One upload becomes one job on the model thread: read the scan, write the report (with
the heat map), package the downloads and the viewer's volume. The routes in
:mod:`mu2.web.app` only translate HTTP to these calls and back.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from mu2.errors import Mu2Error
from mu2.web.preview import volume_preview
from mu2.web.settings import ServeSettings
from mu2.web.store import ResultStore, StoredResult
from mu2.web.uploads import (
    ACCEPTED,
    DiskBudget,
    Upload,
    UploadLimits,
    UploadRejected,
    safe_stem,
)
from mu2.web.worker import ModelWorker

log = logging.getLogger(__name__)

TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")
AUTO_REGION = "auto"
FINDINGS_EXTRACTOR = "mu2.findings.extract (rule-based, offline: the offline judge's reader)"


def _hide_paths(message: str, upload: Upload) -> str:
    """Error lines name the user's file, not the server's private folder."""
    for path in sorted({str(upload.scan), str(upload.workdir)}, key=len, reverse=True):
        message = message.replace(path, upload.filename)
    return message


# Readers and the generator word their fixes for the CLI; an API caller cannot pass a flag.
# The CLI phrase -> the form field (and page box) that does the same. Longest phrases
# first, so a flag inside a longer phrase is not rewritten twice.
API_HINTS: tuple[tuple[str, str], ...] = (
    ("--question and --region all ask different things",
     "a question and region 'all' ask different things"),
    ("drop --question for one answer per region, or drop --region",
     "leave the question empty for one answer per region, or choose one region"),
    ("unknown --region", "unknown region"),
    ("raise the cap (--max-voxels)", "send a cropped or resampled scan"),
    ("lower the cap (--max-voxels) to refuse such files early", "send a smaller scan"),
    ("name a region with --region R --force", "name a region and send force=true"),
    ("add --allow-non-ct", "send allow_non_ct=true (the page's 'allow non-CT' box)"),
    ("add --force", "send force=true (the page's 'ask the region anyway' box)"),
    ("drop --question", "leave the question field empty"),
    ("drop --region", "set the region field to auto"),
    ("empty --question", "empty question field"),
    ("--question", "the question field"),
    ("--region", "the region field"),
    ("--heatmap", "the heatmap field"),
)


def api_hint(message: str) -> str:
    """The same error line with CLI flags replaced by the API fields that do the job."""
    for cli, api in API_HINTS:
        message = message.replace(cli, api)
    return message


def _stop_if(cancel: threading.Event | None, upload: Upload) -> None:
    """Between stages: give up when the client that asked has gone."""
    if cancel is not None and cancel.is_set():
        log.info("client gone: stopped the report for %s", upload.filename)
        raise UploadRejected(499, "the client closed the connection; report cancelled")


class ReportService:
    """The model (loaded once), the single worker thread and the LRU of results."""

    def __init__(self, generator: Any, settings: ServeSettings) -> None:
        self.generator = generator
        self.settings = settings
        self.worker = ModelWorker(settings.max_queue)
        self.store = ResultStore(settings.cache_size, settings.cache_bytes)
        self.limits = UploadLimits(
            settings.max_upload_bytes,
            settings.max_unzipped_bytes,
            settings.max_zip_entries,
            settings.max_unzip_ratio,
            settings.min_free_disk_bytes,
        )
        # what all requests unpacking at once may write, together
        self.disk_budget = DiskBudget(settings.max_unzipped_bytes)
        self.started = time.time()

    # -- request options ------------------------------------------------------------------
    def options(self, fields: dict[str, str]) -> dict[str, Any]:
        """Form fields -> report options; 422 for a region or flag mu2 does not know."""
        from mu2.generate.scope import check_ask

        question = (fields.get("question") or "").strip() or None
        region = (fields.get("region") or "").strip().lower() or None
        if region == AUTO_REGION:
            region = None
        try:
            question, region = check_ask(question, region)
        except Mu2Error as err:  # the same check as mu2 report, worded for the form
            raise UploadRejected(422, api_hint(err.message), fix=api_hint(err.fix or "")) from None
        flags = {}
        for name in ("heatmap", "force", "allow_non_ct"):
            flag = (fields.get(name) or "").strip().lower()
            if flag and flag not in TRUE_WORDS + FALSE_WORDS:
                raise UploadRejected(422, f"{name} must be true or false, got '{flag}'")
            flags[name] = flag
        heatmap = self.settings.heatmap and flags["heatmap"] not in FALSE_WORDS
        return {
            "question": question,
            "region": region,
            "heatmap": heatmap,
            # ask a region outside the scan / model card; report on a non-CT volume: both
            # off unless asked, and then every output says so
            "force": flags["force"] in TRUE_WORDS,
            "allow_non_ct": flags["allow_non_ct"] in TRUE_WORDS,
        }

    # -- one report -----------------------------------------------------------------------
    async def report(
        self, upload: Upload, cancel: threading.Event | None = None
    ) -> tuple[str, StoredResult]:
        """Queue the upload for the model; returns the result id and the kept result.

        ``cancel`` set (the client went away) stops the job at its next stage.
        """
        opts = self.options(upload.fields)
        rid = uuid.uuid4().hex
        try:
            stored, waited = await self.worker.run(self._job, upload, opts, rid, cancel)
        except UploadRejected:
            raise
        except Mu2Error as err:
            raise UploadRejected(422, api_hint(_hide_paths(str(err), upload))) from None
        stored.doc["timings"]["queue"] = round(waited, 4)
        self.store.put(rid, stored)
        return rid, stored

    def _job(
        self,
        upload: Upload,
        opts: dict[str, Any],
        rid: str,
        cancel: threading.Event | None = None,
    ) -> StoredResult:
        """Runs on the model thread: read, report, package (one scan in memory at a time).

        The header is costed against ``max_memory_gb`` before any voxel is read.
        """
        from mu2.generate.fhir import describe_finding
        from mu2.generate.outputs import fhir_document, write_outputs
        from mu2.io import load_ct

        s = self.settings
        _stop_if(cancel, upload)
        t0 = time.perf_counter()
        volume = load_ct(
            upload.scan,
            allow_non_ct=opts["allow_non_ct"],
            max_memory_bytes=int(s.max_memory_gb * 2**30),
        )
        load_seconds = time.perf_counter() - t0
        _stop_if(cancel, upload)
        result = self.generator.report(
            volume,
            question=opts["question"],
            region=opts["region"],
            heatmap=opts["heatmap"],
            **dataclasses.asdict(s.generation),
            load_seconds=load_seconds,
            allow_non_ct=opts["allow_non_ct"],
            force=opts["force"],
        )
        result.input["path"] = upload.filename  # never the server's temp path
        result.input["warnings"] = [
            _hide_paths(str(w), upload) for w in result.input.get("warnings") or []
        ]
        result.warnings = [_hide_paths(str(w), upload) for w in result.warnings]
        _stop_if(cancel, upload)
        heat = upload.workdir / "heatmap.nii.gz" if result.heatmap is not None else None
        if heat is not None:
            write_outputs(result, volume, heatmap_nifti=heat)
        heat_nifti = heat.read_bytes() if heat is not None else None
        fhir = fhir_document(result, report_id=rid)  # served from memory
        preview = volume_preview(volume.array, volume.spacing, result.heatmap, s.preview_max_dim)
        doc = result.to_dict()
        doc["findings"] = [
            {**d, "description": describe_finding(f)}
            for f, d in zip(result.findings, doc["findings"], strict=True)
        ]
        stem = safe_stem(upload.filename)
        doc.update(
            id=rid,
            filename=upload.filename,
            heatmap_id=rid if heat_nifti is not None else None,
            fhir=fhir,
            downloads={
                "json": f"/api/result/{rid}",
                "fhir": f"/api/result/{rid}/fhir",
                "heatmap_nifti": f"/api/heatmap/{rid}" if heat_nifti is not None else None,
            },
            download_names={
                "json": f"{stem}-mu2-report.json",
                "fhir": f"{stem}-mu2-fhir.json",
                "heatmap_nifti": f"{stem}-mu2-heatmap.nii.gz",
            },
            viewer={
                **preview.describe(),
                "ct": f"/api/volume/{rid}/ct",
                "heat": f"/api/volume/{rid}/heat" if preview.heat is not None else None,
            },
        )
        log.info("report %s for %s in %.2f s", rid, upload.filename, result.timings["total"])
        return StoredResult(
            doc=doc, fhir=fhir, heat_nifti=heat_nifti, preview=preview, filename=upload.filename
        )

    def result(self, rid: str) -> StoredResult:
        item = self.store.get(rid)
        if item is None:
            raise UploadRejected(
                404,
                f"no result '{rid}': unknown, or no longer kept "
                f"(the last {self.settings.cache_size} results are)",
                fix="run the report again",
            )
        return item

    # -- describing the service -----------------------------------------------------------
    def model_info(self) -> dict[str, Any]:
        """What model runs, with which tokenizer, and how findings are judged (offline)."""
        from mu2.generate.scope import REGION_CHOICES
        from mu2.metrics.green.backends import RULES_LABEL

        g = self.generator
        cfg = g.model.config
        tok = dict(getattr(cfg, "tokenizer_config", None) or {})
        text_cfg = getattr(cfg, "text_config", None)
        model_dir = getattr(g, "model_dir", None)
        card = getattr(g, "card", None)
        return {
            "model": g.model_id,
            "card": card.to_dict() if card is not None else None,
            "card_warning": card.warning() if card is not None else None,
            "training_data": card.data_summary if card is not None else None,
            "model_dir": str(model_dir) if isinstance(model_dir, Path) else None,
            "preset": getattr(cfg, "preset", None),
            "size": getattr(cfg, "size", None),
            "prep": getattr(cfg, "prep", None),
            "tokenizer": {"preset": getattr(cfg, "preset", None), **tok},
            "llm": getattr(text_cfg, "model_type", None),
            "parameters": int(sum(p.numel() for p in g.model.parameters())),
            "device": str(g.device),
            "heatmap": self.settings.heatmap,
            "findings_extractor": FINDINGS_EXTRACTOR,
            "judge": {"name": "rules", "label": RULES_LABEL, "offline": True},
            "regions": [AUTO_REGION, *REGION_CHOICES],
            "accepted": ACCEPTED,
            "limits": {
                "max_upload_bytes": self.settings.max_upload_bytes,
                "max_unzipped_bytes": self.settings.max_unzipped_bytes,
                "max_zip_entries": self.settings.max_zip_entries,
                "max_queue": self.settings.max_queue,
                "max_memory_gb": self.settings.max_memory_gb,
                "max_unzip_ratio": self.settings.max_unzip_ratio,
            },
            "generation": {
                "max_new_tokens": self.settings.generation.max_new_tokens,
                "do_sample": self.settings.generation.do_sample,
                **(
                    {"temperature": self.settings.generation.temperature,
                     "top_p": self.settings.generation.top_p}
                    if self.settings.generation.do_sample
                    else {}
                ),  # fmt: skip
            },
        }

    def health(self) -> dict[str, Any]:
        return {
            "status": "ok",
            "model": self.generator.model_id,
            "queue": self.worker.status(),
            "results_kept": len(self.store),
            "uptime_s": round(time.time() - self.started, 1),
        }

    def close(self) -> None:
        self.worker.close()

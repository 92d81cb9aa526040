"""``create_app``: the FastAPI app behind `mu2 serve` (JSON API plus one static page).

Routes: ``POST /api/report`` (multipart: file, question, region, heatmap, force,
allow_non_ct),
``GET /api/result/{id}`` (JSON), ``/api/result/{id}/fhir``, ``/api/heatmap/{id}`` (NIfTI),
``/api/volume/{id}/ct`` and ``/heat`` (the viewer's bytes), ``/api/health``, ``/api/model``,
``/openapi.json``, and the page at ``/``. FastAPI's ``/docs`` and ``/redoc`` are switched
off: their pages load Swagger UI / ReDoc from a CDN, and this service runs offline; the
schema itself is served at ``/openapi.json``.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from mu2.errors import Mu2Error
from mu2.web.guard import TOKEN_HEADER, GuardMiddleware, new_token
from mu2.web.service import ReportService
from mu2.web.settings import ServeSettings
from mu2.web.uploads import ACCEPTED, UploadRejected, receive_upload

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
NIFTI_GZ_TYPE = "application/gzip"
FHIR_JSON_TYPE = "application/fhir+json"
DISCONNECT_POLL_S = 0.5  # how often a waiting request checks that its client is still there

_REPORT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": f"The CT: {ACCEPTED}.",
                        },
                        "question": {
                            "type": "string",
                            "description": "Ask this instead of one findings question per region.",
                        },
                        "region": {
                            "type": "string",
                            "enum": ["auto", "chest", "abdomen", "pelvis", "all"],
                            "description": "auto (default): the regions the scan covers.",
                        },
                        "heatmap": {
                            "type": "boolean",
                            "description": "Compute the question-to-CT heat map (default true).",
                        },
                        "force": {
                            "type": "boolean",
                            "description": "Ask a region the scan does not cover or the model "
                            "card does not list (default false; the output then says so).",
                        },
                        "allow_non_ct": {
                            "type": "boolean",
                            "description": "Report on a volume that does not look like CT "
                            "(MR, label map, blank; default false: 422).",
                        },
                    },
                }
            }
        },
    }
}
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {
        "description": "Malformed upload, an unsafe zip (path traversal, links), or a Host "
        "header this server does not serve."
    },
    403: {"description": f"Missing or wrong {TOKEN_HEADER} header, or a foreign Origin."},
    413: {"description": "Upload larger than the limit, or a zip that unpacks too far."},
    415: {"description": "Not a .nii, .nii.gz, .npy or zipped DICOM series."},
    422: {
        "description": "The scan cannot be read, is not a CT, needs more memory than the "
        "server's budget, or an unknown region or one outside the scan / model card."
    },
    431: {"description": "Too many request headers."},
    500: {"description": "An internal error (a bug): JSON with one line."},
    503: {"description": "Too many requests already queued for the model."},
    507: {"description": "Not enough free disk space for the upload."},
}


def _attachment(name: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}"'}


def create_app(
    model_dir: str | Path | None = None,
    *,
    generator: Any | None = None,
    settings: ServeSettings | None = None,
) -> FastAPI:
    """The app, with the model loaded now (a missing model fails here, before serving).

    ``generator``: a :class:`mu2.generate.ReportGenerator` already in memory (then
    ``model_dir`` is not read); else one is loaded from ``model_dir`` (None = the demo
    model under ``$MU2_HOME``) on ``settings.device``.
    """
    settings = settings or ServeSettings()
    if generator is None:
        from mu2.generate.pipeline import ReportGenerator

        generator = ReportGenerator(model_dir, device=settings.device)
    service = ReportService(generator, settings)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        service.close()

    app = FastAPI(
        title="mu2",
        summary="Radiology reports from 3-D CT (mu2 Tokenizer, MICCAI 2025).",
        description="Machine-generated draft reports for research; not for clinical use.",
        version=_version(),
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.token = settings.token or new_token()
    app.add_middleware(
        GuardMiddleware,
        token=app.state.token,
        allowed_hosts=settings.allowed_hosts,
        allowed_origins=settings.allowed_origins,
        max_headers=settings.max_headers,
    )

    @app.exception_handler(Exception)
    async def _internal(_: Request, err: Exception) -> JSONResponse:
        log.exception("internal error")
        line = (str(err).splitlines() or [""])[0][:200]
        return JSONResponse(
            {"detail": f"internal error: {type(err).__name__}: {line} -- fix: see the server log"},
            status_code=500,
        )

    @app.exception_handler(UploadRejected)
    async def _rejected(_: Request, err: UploadRejected) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=err.status)

    @app.exception_handler(Mu2Error)
    async def _user_error(_: Request, err: Mu2Error) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=422)

    @app.get("/api/health", tags=["service"])
    async def health() -> dict[str, Any]:
        """Liveness, the model's queue, and how many results are kept."""
        return service.health()

    @app.get("/api/model", tags=["service"])
    async def model() -> dict[str, Any]:
        """Which model runs, its tokenizer preset, and which judge reads findings offline."""
        return service.model_info()

    @app.post("/api/report", tags=["report"], openapi_extra=_REPORT_BODY, responses=_ERRORS)
    async def report(request: Request) -> JSONResponse:
        """Upload a CT; get the report by region, findings, FHIR and the heat-map id.

        Requests that arrive while the model is busy wait their turn.
        """
        # A place in the queue first: a flood is refused before its bodies are read.
        async with (
            service.worker.admission(),
            receive_upload(request, service.limits, service.disk_budget) as upload,
        ):
            stored = await _unless_disconnected(request, service, upload)
        return JSONResponse(stored.doc)

    @app.get("/api/result/{rid}", tags=["report"], responses={404: {}})
    async def result_json(rid: str) -> JSONResponse:
        """The full JSON answer of a report (downloaded as a file)."""
        item = service.result(rid)
        return JSONResponse(item.doc, headers=_attachment(item.doc["download_names"]["json"]))

    @app.get("/api/result/{rid}/fhir", tags=["report"], responses={404: {}})
    async def result_fhir(rid: str) -> JSONResponse:
        """The report as a FHIR R4 DiagnosticReport with findings as Observations."""
        item = service.result(rid)
        return JSONResponse(
            item.fhir,
            media_type=FHIR_JSON_TYPE,
            headers=_attachment(item.doc["download_names"]["fhir"]),
        )

    @app.get("/api/heatmap/{rid}", tags=["report"], responses={404: {}})
    async def heatmap(rid: str) -> Response:
        """The heat map as .nii.gz, aligned voxel for voxel with the uploaded scan."""
        item = service.result(rid)
        if item.heat_nifti is None:
            raise UploadRejected(404, f"result '{rid}' has no heat map (asked without one)")
        return Response(
            item.heat_nifti,
            media_type=NIFTI_GZ_TYPE,
            headers=_attachment(item.doc["download_names"]["heatmap_nifti"]),
        )

    @app.get("/api/volume/{rid}/{layer}", tags=["viewer"], responses={404: {}})
    async def volume(rid: str, layer: str) -> Response:
        """The viewer's subsampled volume: ``ct`` (int16 HU) or ``heat`` (uint8)."""
        item = service.result(rid)
        if layer not in ("ct", "heat"):
            raise UploadRejected(404, f"unknown layer '{layer}'", fix="use ct or heat")
        data = item.preview.ct if layer == "ct" else item.preview.heat
        if data is None:
            raise UploadRejected(404, f"result '{rid}' has no heat map")
        return Response(data, media_type="application/octet-stream")

    page = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    meta = f'<meta name="mu2-token" content="{html.escape(app.state.token)}">'
    page = page.replace("</head>", f"  {meta}\n</head>", 1)  # the page sends it on POST

    @app.get("/", include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


async def _unless_disconnected(request: Request, service: ReportService, upload: Any) -> Any:
    """The report, or its cancellation when the client disconnects while it waits or runs:
    a queued job is taken off the queue, a running one stops at its next stage."""
    cancel = threading.Event()
    task = asyncio.ensure_future(service.report(upload, cancel))
    while True:
        done, _ = await asyncio.wait({task}, timeout=DISCONNECT_POLL_S)
        if done:
            return task.result()[1]
        if await request.is_disconnected():
            cancel.set()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            raise UploadRejected(499, "the client closed the connection; report cancelled")


def _version() -> str:
    from mu2 import __version__

    return __version__

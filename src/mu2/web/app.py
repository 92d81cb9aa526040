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

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from mu2.errors import Mu2Error
from mu2.web.service import ReportService
from mu2.web.settings import ServeSettings
from mu2.web.uploads import ACCEPTED, UploadRejected, receive_upload

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
NIFTI_GZ_TYPE = "application/gzip"
FHIR_JSON_TYPE = "application/fhir+json"

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
    400: {"description": "Malformed upload, or an unsafe zip (path traversal, links)."},
    413: {"description": "Upload larger than the limit, or a zip that unpacks too far."},
    415: {"description": "Not a .nii, .nii.gz, .npy or zipped DICOM series."},
    422: {
        "description": "The scan cannot be read, is not a CT, or an unknown region or one "
        "outside the scan / model card."
    },
    503: {"description": "Too many requests already queued for the model."},
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
        async with receive_upload(request, service.limits) as upload:
            _, stored = await service.report(upload)
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

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def _version() -> str:
    from mu2 import __version__

    return __version__

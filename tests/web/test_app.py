"""The JSON API on the real CT samples with a real (untrained) tiny model, in process."""

from __future__ import annotations

import json
import re
import tempfile
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.diagnosticreport import DiagnosticReport

from mu2.errors import Mu2Error
from mu2.io import load_ct
from mu2.web import create_app
from mu2.web.app import STATIC_DIR


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Send this test's temporary files (uploads, spooled bodies) to a folder we can list."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.fixture
def client(web_generator, make_settings, private_tmp: Path):
    app = create_app(generator=web_generator, settings=make_settings())
    with TestClient(app, headers={"X-Mu2-Token": app.state.token}) as c:
        yield c
    assert list(private_tmp.iterdir()) == []  # every upload folder was removed


def _post(client: TestClient, path: Path, name: str | None = None, **data: str):
    with path.open("rb") as fh:
        return client.post("/api/report", files={"file": (name or path.name, fh)}, data=data)


def test_report_on_the_real_ct(client: TestClient, real_ct_path: Path, tmp_path: Path) -> None:
    res = _post(client, real_ct_path)
    assert res.status_code == 200, res.text
    doc = res.json()
    rid = doc["id"]
    # This abdomen/pelvis CT gets one section per covered region, each with (sampled) text.
    assert [s["region"] for s in doc["sections"]] == ["abdomen", "pelvis"]
    assert all(s["text"] for s in doc["sections"])
    assert doc["report"].startswith("ABDOMEN:\n" + doc["sections"][0]["text"])
    assert doc["input"]["path"] == "example_ct.nii.gz"  # not the server's temp path
    assert set(doc["timings"]) >= {"queue", "load", "prepare", "encode", "generate", "total"}
    assert doc["heatmap_id"] == rid

    # FHIR: a valid R4 DiagnosticReport, inline and as a download.
    report = DiagnosticReport.model_validate(doc["fhir"])
    assert report.id == rid and report.status == "preliminary"
    fhir = client.get(doc["downloads"]["fhir"])
    assert fhir.headers["content-type"] == "application/fhir+json"
    assert "example_ct-mu2-fhir.json" in fhir.headers["content-disposition"]
    assert fhir.json() == doc["fhir"]
    assert client.get(doc["downloads"]["json"]).json() == doc

    # Heat map NIfTI: the uploaded scan's grid and affine, peak 1.
    heat_file = tmp_path / "heat.nii.gz"
    heat_file.write_bytes(client.get(f"/api/heatmap/{rid}").content)
    heat, src = nib.load(heat_file), nib.load(real_ct_path)
    assert heat.shape == src.shape
    np.testing.assert_allclose(heat.affine, src.affine, atol=1e-5)
    assert float(np.max(heat.get_fdata())) == pytest.approx(1.0)

    # The viewer's bytes: the CT in HU and the heat, C-ordered (X, Y, Z).
    v = doc["viewer"]
    assert v["shape"] == [122, 101, 112] and v["step"] == [1, 1, 1]
    ct = np.frombuffer(client.get(v["ct"]).content, dtype="<i2").reshape(v["shape"])
    np.testing.assert_array_equal(ct, np.rint(load_ct(real_ct_path).array).clip(-1024, 3071))
    hb = np.frombuffer(client.get(v["heat"]).content, dtype=np.uint8).reshape(v["shape"])
    assert hb[tuple(doc["heatmap"]["peak_voxel_canonical"])] == 255
    # peak_voxel indexes the stored grid: the heat-map NIfTI written beside the input
    assert heat.get_fdata()[tuple(doc["heatmap"]["peak_voxel"])] == pytest.approx(1.0)
    # the model card travels with the JSON and the FHIR (a contained Device)
    assert doc["model"]["card"]["known"] is False
    assert any("model card missing" in w for w in doc["warnings"])
    assert doc["fhir"]["contained"][0]["resourceType"] == "Device"

    health = client.get("/api/health").json()
    assert health["queue"]["completed"] == 1 and health["results_kept"] == 1


def test_zipped_dicom_series_and_npy(
    client: TestClient, data_dir: Path, small_npy: Path, tmp_path: Path
) -> None:
    series = data_dir / "real-ct" / "example_ct_dicom"
    archive = tmp_path / "series.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in sorted(series.iterdir()):
            zf.write(f, f"study/series/{f.name}")
    res = _post(client, archive, region="abdomen", heatmap="false")
    assert res.status_code == 200, res.text
    doc = res.json()
    assert doc["input"]["format"] == "dicom" and doc["input"]["shape"][2] == 20
    assert [s["region"] for s in doc["sections"]] == ["abdomen"]
    assert doc["heatmap_id"] is None and doc["downloads"]["heatmap_nifti"] is None
    assert client.get(f"/api/heatmap/{doc['id']}").status_code == 404
    assert client.get(f"/api/volume/{doc['id']}/heat").status_code == 404
    # 512 x 512 slices are subsampled for the page: no side above 256.
    assert max(doc["viewer"]["shape"]) <= 256 and doc["viewer"]["step"][:2] == [2, 2]

    res = _post(client, small_npy, question="Is there a renal cyst in this CT?")
    assert res.status_code == 200, res.text
    doc = res.json()
    assert doc["input"]["format"] == "npy" and doc["input"]["shape"] == [122, 101, 16]
    assert len(doc["sections"]) == 1 and doc["sections"][0]["region"] is None


def test_uploads_refused_with_clear_messages(
    web_generator, make_settings, private_tmp: Path, real_ct_path: Path, tmp_path: Path
) -> None:
    settings = make_settings(max_upload_bytes=200_000)
    app = create_app(generator=web_generator, settings=settings)
    with TestClient(app, headers={"X-Mu2-Token": app.state.token}) as c:

        def post(name: str, data: bytes, **form: str):
            return c.post("/api/report", files={"file": (name, data)}, data=form)

        r = post("notes.txt", b"hello")
        assert r.status_code == 415 and "unsupported file type '.txt'" in r.json()["detail"]
        assert ".nii.gz" in r.json()["detail"]  # says what is accepted
        r = post("scan.nii.gz", b"<html>")
        assert r.status_code == 415 and "does not start with gzip" in r.json()["detail"]
        r = c.post("/api/report", json={"file": "x"})
        assert r.status_code == 415 and "multipart/form-data" in r.json()["detail"]
        r = post("scan.nii.gz", b"\x1f\x8b" + b"garbage" * 10)
        assert r.status_code == 422 and "scan.nii.gz" in r.json()["detail"]
        assert str(private_tmp) not in r.json()["detail"]  # no server paths in messages
        r = post("scan.npy", b"\x93NUMPY" + b"0" * 300_000)
        assert r.status_code == 413 and "larger than the 0.2 MB" in r.json()["detail"]

        def chunks():  # no Content-Length: the byte count stops it
            yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.npy"\r\n\r\n'
            for _ in range(50):
                yield b"0" * 10_000

        r = c.post(
            "/api/report",
            content=chunks(),
            headers={"content-type": "multipart/form-data; boundary=b"},
        )
        assert r.status_code == 413, r.text
        traversal = tmp_path / "t.zip"
        with zipfile.ZipFile(traversal, "w") as zf:
            zf.writestr("../../etc/cron.d/x", b"x")
        r = post("series.zip", traversal.read_bytes())
        assert r.status_code == 400 and "path traversal" in r.json()["detail"]
        r = c.post("/api/report", data={"question": "no file"}, files={"other": ("a", b"")})
        assert r.status_code == 400 and "no file" in r.json()["detail"]
        r = post("ct.nii.gz", real_ct_path.read_bytes()[:100_000], region="head")
        assert r.status_code == 422 and "unknown region 'head'" in r.json()["detail"]
        r = post("ct.nii.gz", real_ct_path.read_bytes()[:100], heatmap="maybe")
        assert r.status_code == 422
        r = c.get("/api/result/0123abcd")
        assert r.status_code == 404 and "run the report again" in r.json()["detail"]
        health = c.get("/api/health").json()["queue"]
        assert health["completed"] == 0  # nothing above reached the model
    assert list(private_tmp.iterdir()) == []


def test_old_results_are_evicted(web_generator, make_settings, small_npy: Path) -> None:
    app = create_app(generator=web_generator, settings=make_settings(cache_size=1))
    with TestClient(app, headers={"X-Mu2-Token": app.state.token}) as c:
        # a .npy has no spacing (1 mm assumed): 16 mm show no region, so ask it by force
        first = _post(c, small_npy, region="abdomen", force="true").json()["id"]
        second = _post(c, small_npy, region="abdomen", force="true").json()["id"]
        assert first != second
        assert c.get(f"/api/result/{second}").status_code == 200
        r = c.get(f"/api/heatmap/{first}")
        assert r.status_code == 404 and "no longer kept" in r.json()["detail"]


def test_model_info_openapi_and_page(client: TestClient) -> None:
    info = client.get("/api/model").json()
    assert info["preset"] == "mu2" and info["tokenizer"]["kind"] == "mu2"
    assert info["tokenizer"]["pooling"] == "dynamic" and info["llm"] == "llama"
    assert info["judge"]["offline"] is True and "rules" in info["judge"]["label"]
    assert info["model_dir"] is not None and info["parameters"] > 0
    schema = client.get("/openapi.json").json()
    body = schema["paths"]["/api/report"]["post"]["requestBody"]["content"]
    assert "file" in body["multipart/form-data"]["schema"]["properties"]
    assert {"413", "415"} <= set(schema["paths"]["/api/report"]["post"]["responses"])
    assert {"/api/health", "/api/model", "/api/heatmap/{rid}"} <= set(schema["paths"])
    # Swagger UI / ReDoc would load from a CDN: switched off.
    assert client.get("/docs").status_code == 404 and client.get("/redoc").status_code == 404
    page = client.get("/")
    assert page.status_code == 200 and "mu2" in page.text
    for asset in ("app.js", "style.css"):
        assert client.get(f"/static/{asset}").status_code == 200


def test_page_loads_nothing_from_elsewhere() -> None:
    names = sorted(p.name for p in STATIC_DIR.iterdir())
    assert names == ["app.js", "index.html", "style.css"]
    for path in STATIC_DIR.iterdir():
        # No quoted or url() reference to another host ("http://", "https://", "//host").
        hit = re.search(r"""["'`(]\s*(https?:)?//""", path.read_text())
        assert hit is None, f"{path.name}: {hit.group(0) if hit else ''}"


def test_create_app_loads_the_model_once_from_a_folder(tiny_model_dir: Path) -> None:
    app = create_app(tiny_model_dir)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        assert c.get("/api/model").json()["model_dir"] == str(tiny_model_dir)
    assert app.state.service.generator.model_dir == tiny_model_dir


def test_missing_model_fails_before_serving(tmp_path: Path) -> None:
    with pytest.raises(Mu2Error, match="no model at .*mu2 demo"):
        create_app(tmp_path / "nothing")


def test_json_download_is_the_answer(client: TestClient, small_npy: Path) -> None:
    res = _post(client, small_npy, region="abdomen")
    # a .npy has no spacing (1 mm assumed): 16 mm show no region, refused unless forced
    detail = res.json()["detail"]
    assert res.status_code == 422
    assert detail.startswith("ct16.npy: the scan does not cover the abdomen")
    assert "fix: send force=true (the page's 'ask the region anyway' box)" in detail
    doc = _post(client, small_npy, region="abdomen", force="true").json()
    assert any("--force" in w for w in doc["warnings"])
    res = client.get(f"/api/result/{doc['id']}")
    assert "ct16-mu2-report.json" in res.headers["content-disposition"]
    assert json.loads(res.content) == doc


def test_warnings_name_the_upload_not_the_server_folder(
    client: TestClient, data_dir: Path, private_tmp: Path
) -> None:
    mr = data_dir / "real-ct" / "example_mr_sm.nii.gz"
    with pytest.warns(Warning, match="does not look like CT"):
        res = _post(client, mr, region="abdomen", heatmap="false")
    # not a CT: refused with one line naming the upload, unless allow_non_ct
    assert res.status_code == 422, res.text
    detail = res.json()["detail"]
    assert detail.startswith("example_mr_sm.nii.gz: not a CT")
    assert "send allow_non_ct=true" in detail and "--allow-non-ct" not in detail
    with pytest.warns(Warning, match="not a CT"):
        res = _post(
            client, mr, region="abdomen", heatmap="false", allow_non_ct="true", force="true"
        )
    assert res.status_code == 200, res.text
    warnings = res.json()["input"]["warnings"]
    assert warnings and warnings[0].startswith("example_mr_sm.nii.gz: values range")
    assert any("not a CT" in w for w in res.json()["warnings"])
    assert "not a CT" in res.json()["fhir"]["conclusion"]
    assert str(private_tmp) not in json.dumps(res.json())
    res = _post(client, mr, question="Any cyst?", region="all")
    assert res.status_code == 422 and "region 'all'" in res.json()["detail"]

"""The bad-input corpus uploaded to the web service, as the page sends it.

Every case the service takes (.nii, .nii.gz, .npy, .npz, a DICOM folder zipped) is posted
to ``/api/report`` with the page's token: an ``error`` case must get a 4xx JSON answer
that names the uploaded file and says how to fix it (never a 500 or a bare text page),
an ``accept`` case a report.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mu2.generate.settings import GenerationSettings
from mu2.web import create_app
from mu2.web.settings import ServeSettings

TRAIN_TEXTS = ["Describe the findings of the abdomen.", "The liver is normal. No ascites."]


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from mu2.generate.pipeline import ReportGenerator
    from mu2.model import build

    model = tmp_path_factory.mktemp("web_corpus_model")
    build("tiny", preset="mu2", train_texts=TRAIN_TEXTS, seed=0).save_pretrained(model)
    settings = ServeSettings(
        generation=GenerationSettings(max_new_tokens=2), token="corpus-token-0123456789"
    )
    app = create_app(generator=ReportGenerator(model), settings=settings)
    headers = {"X-Mu2-Token": app.state.token}
    with TestClient(app, base_url="http://127.0.0.1:8000", headers=headers) as c:
        yield c


def _upload(path: Path, tmp_path: Path) -> tuple[str, bytes]:
    """What the page sends: the file itself, or a folder as a zip of its files."""
    if path.is_file():
        return path.name, path.read_bytes()
    archive = tmp_path / f"{path.name}.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in sorted(p for p in path.rglob("*") if p.is_file()):
            zf.write(f, f.relative_to(path).as_posix())
    return archive.name, archive.read_bytes()


def test_upload(corpus, corpus_cases, upload_case, client, tmp_path):
    case = corpus_cases[upload_case]
    name, body = _upload(corpus[upload_case], tmp_path)
    # a region by force: these small volumes need not show the HU landmarks of one; the
    # content check is not what this corpus tests (a uint8 volume looks like a label map)
    form = {"region": "abdomen", "force": "true"}
    if case.expect == "accept":
        form["allow_non_ct"] = "true"
    r = client.post("/api/report", files={"file": (name, body)}, data=form)
    assert r.headers["content-type"].startswith("application/json"), r.text
    if case.expect == "accept":
        assert r.status_code == 200, r.text
        assert r.json()["sections"], r.text
        return
    assert r.status_code in (400, 413, 415, 422), r.text
    detail = r.json()["detail"]
    assert "\n" not in detail and "Traceback" not in detail
    assert name in detail and "fix:" in detail, detail
    assert not re.search(r"(?<![\w-])--[a-z]", detail), detail  # API fields, not CLI flags

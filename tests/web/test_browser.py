"""End to end in headless Chromium: upload the real CT, see the report and the heat overlay.

Playwright drives the Debian ``chromium`` package (never ``playwright install``, whose
browser download fails offline). Without Chromium the test fails in CI (``CI`` set,
where `.ci/run` installs it) and is skipped elsewhere. The screenshot is kept in
``test-artifacts/``; with ``MU2_UPDATE_SCREENSHOT=1`` it also replaces docs/img/viewer.png.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from mu2.web import create_app

CHROMIUM = Path(os.environ.get("MU2_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
README_SCREENSHOT = REPO / "docs" / "img" / "viewer.png"
VIEWPORT = {"width": 1600, "height": 640}
REPORT_TIMEOUT_MS = 180_000

# Pixels of a canvas: how many are not fully transparent, and the sum of the red channel.
CANVAS_STATS = """(sel) => {
  const c = document.querySelector(sel);
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let opaque = 0, red = 0;
  for (let i = 0; i < d.length; i += 4) { if (d[i + 3] > 0) opaque++; red += d[i]; }
  return {opaque, red, width: c.width, height: c.height, hidden: c.hidden};
}"""


def _chromium_or_skip() -> None:
    if CHROMIUM.is_file():
        return
    msg = (
        f"Chromium not found at {CHROMIUM}: install the Debian packages "
        "`chromium chromium-driver` (.ci/run does), or set MU2_CHROMIUM"
    )
    if os.environ.get("CI"):
        pytest.fail(msg)
    pytest.skip(msg)


@pytest.mark.timeout(300)
def test_viewer_end_to_end_in_chromium(
    web_generator, make_settings, live_server, real_ct_path: Path, tmp_path: Path
) -> None:
    _chromium_or_skip()
    from playwright.sync_api import expect, sync_playwright

    app = create_app(generator=web_generator, settings=make_settings(max_new_tokens=24))
    with live_server(app) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            page = browser.new_page(viewport=VIEWPORT, accept_downloads=True)
            errors: list[str] = []
            elsewhere: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("request", lambda r: None if r.url.startswith(url) else elsewhere.append(r.url))
            page.goto(url)
            expect(page.locator("#model-info")).to_contain_text("tokenizer mu2")

            posts: list[str] = []
            page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
            page.set_input_files("#file", str(real_ct_path))  # choosing a file runs nothing
            page.wait_for_timeout(300)
            assert posts == []
            with page.expect_response("**/api/report", timeout=REPORT_TIMEOUT_MS) as answer:
                page.click("#run")
            doc = answer.value.json()
            assert answer.value.status == 200, doc
            page.wait_for_selector("body[data-state=ready]", timeout=REPORT_TIMEOUT_MS)

            # The report by region, as the API wrote it.
            sections = doc["sections"]
            assert [s["region"] for s in sections] == ["abdomen", "pelvis"]
            for s in sections:
                block = page.locator(f'#report section[data-region="{s["region"]}"]')
                expect(block.locator("h3")).to_have_text(s["region"].upper())
                assert s["text"]
                assert block.locator(".text").inner_text() == s["text"]
            expect(page.locator("#status")).to_contain_text("report ready for example_ct.nii.gz")
            rows = page.locator("#findings tbody tr")
            expect(rows).to_have_count(max(1, len(doc["findings"])))
            assert len(posts) == 1  # one run per request
            # the model card's warning in the page header and the report's warnings
            expect(page.locator("#card-warning")).to_contain_text("model card")
            expect(page.locator("#warnings")).to_contain_text("model card")

            # The heat overlay is drawn on all three views, and the toggle hides it.
            for view in ("axial", "coronal", "sagittal"):
                stats = page.evaluate(CANVAS_STATS, f"#heat-{view}")
                assert not stats["hidden"] and stats["opaque"] > 0, (view, stats)
                expect(page.locator(f"#heat-{view}")).to_be_visible()
            page.uncheck("#overlay")
            expect(page.locator("#heat-axial")).to_be_hidden()
            page.check("#overlay")
            expect(page.locator("#heat-axial")).to_be_visible()

            # Window presets and the slice slider redraw the CT.
            ct = '.view[data-view="axial"] canvas.ct'
            abdomen = page.evaluate(CANVAS_STATS, ct)
            assert (abdomen["width"], abdomen["height"]) == (122, 101)
            page.click('#windows button[data-window="lung"]')
            assert page.evaluate(CANVAS_STATS, ct)["red"] != abdomen["red"]
            page.click('#windows button[data-window="abdomen"]')
            slider = page.locator('.view[data-view="axial"] .slider')
            assert slider.get_attribute("max") == "111"
            slider.fill("20")
            expect(page.locator('.view[data-view="axial"] .idx')).to_have_text("21 / 112")
            assert page.evaluate(CANVAS_STATS, ct)["red"] != abdomen["red"]
            slider.fill(str(doc["heatmap"]["peak_voxel_canonical"][2]))

            # Downloads: FHIR and the heat-map NIfTI come back as files.
            with page.expect_download() as dl:
                page.click("#dl-fhir")
            fhir_path = tmp_path / dl.value.suggested_filename
            dl.value.save_as(fhir_path)
            assert fhir_path.name == "example_ct-mu2-fhir.json"
            assert json.loads(fhir_path.read_text())["resourceType"] == "DiagnosticReport"
            with page.expect_download() as dl:
                page.click("#dl-heat")
            assert dl.value.suggested_filename == "example_ct-mu2-heatmap.nii.gz"

            # A region the scan does not cover is refused in one line; ticked, it is asked
            # and the page lists the warning.
            page.select_option("#region", "chest")
            before = len(errors)
            with page.expect_response("**/api/report", timeout=REPORT_TIMEOUT_MS) as answer:
                page.click("#run")
            assert answer.value.status == 422
            expect(page.locator("#status")).to_contain_text("does not cover the chest")
            assert all("status of 422" in e for e in errors[before:])  # the browser logs it
            del errors[before:]
            page.check("#force")
            with page.expect_response("**/api/report", timeout=REPORT_TIMEOUT_MS) as answer:
                page.click("#run")
            assert answer.value.status == 200
            page.wait_for_selector("body[data-state=ready]", timeout=REPORT_TIMEOUT_MS)
            expect(page.locator("#warnings")).to_contain_text("asked because of --force")
            expect(page.locator('#report section[data-region="chest"] h3')).to_have_text("CHEST")
            page.uncheck("#force")
            page.select_option("#region", "auto")

            ARTIFACTS.mkdir(exist_ok=True)
            shot = ARTIFACTS / "viewer.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
            if os.environ.get("MU2_UPDATE_SCREENSHOT") == "1":
                README_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(shot, README_SCREENSHOT)
            assert errors == [], errors
            assert elsewhere == [], f"the page asked other hosts: {elsewhere}"
        finally:
            browser.close()

"""Take the README screenshot of the viewer (docs/img/viewer.png) in headless Chromium.

Starts the app on 127.0.0.1 (free port) with a model folder (default: the demo model
that `mu2 demo` saves under $MU2_HOME), uploads a CT, waits for the report and saves a
screenshot. Needs the Debian `chromium` package and the `playwright` Python package.

    .venv/bin/python scripts/screenshot_viewer.py [--model DIR] [--scan CT] [--out PNG]
"""

from __future__ import annotations

import argparse
import socket
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
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
VIEWPORT = {"width": 1600, "height": 640}
TIMEOUT_MS = 300_000


def _serve(app) -> tuple[str, object, threading.Thread]:
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise SystemExit("uvicorn did not start")
        time.sleep(0.05)
    return f"http://127.0.0.1:{sock.getsockname()[1]}", server, thread


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=None, help="model folder (default: demo)")
    ap.add_argument("--scan", type=Path, default=REPO / "tests/data/real-ct/example_ct.nii.gz")
    ap.add_argument("--out", type=Path, default=REPO / "docs/img/viewer.png")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--region", default="auto")
    ap.add_argument("--question", default="")
    ap.add_argument("--max-new-tokens", type=int, default=96)
    ap.add_argument(
        "--sample", action="store_true", help="sample (seed 0): an untrained model says more"
    )
    args = ap.parse_args()

    from playwright.sync_api import sync_playwright

    from mu2.errors import Mu2Error
    from mu2.web import ServeSettings, create_app

    settings = ServeSettings(max_new_tokens=args.max_new_tokens, do_sample=args.sample)
    try:
        app = create_app(args.model, settings=settings)
    except Mu2Error as err:
        print(f"screenshot_viewer: {err}", file=sys.stderr)
        return 2
    url, server, thread = _serve(app)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(url)
            page.select_option("#region", args.region)
            page.fill("#question", args.question)
            page.set_input_files("#file", str(args.scan))
            page.wait_for_selector("body[data-state=ready]", timeout=TIMEOUT_MS)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.out), full_page=True)
            browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

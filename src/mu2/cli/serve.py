"""``mu2 serve``: the web viewer and JSON API on one port (FastAPI + uvicorn).

The model is loaded before the port opens, so a missing model fails at once with one
line (exit 2); the default is the demo model that `mu2 demo` saves under $MU2_HOME.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from mu2.cli.overrides import merge
from mu2.cli.overrides import positional as overrides_arg
from mu2.errors import Mu2Error

MIB = 1024 * 1024
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve(
        model: Path | None = typer.Option(
            None, "--model", help="Model folder (default: the demo model under $MU2_HOME)."
        ),
        host: str = typer.Option(
            "127.0.0.1", "--host", help="Address to listen on (the API has only a token)."
        ),
        port: int = typer.Option(8000, "--port", help="Port; 0 picks a free one."),
        max_upload_mb: float | None = typer.Option(
            None, "--max-upload-mb", help="Largest upload accepted, in MB (default 1024)."
        ),
        device: str | None = typer.Option(None, "--device", help="cpu or cuda (default cpu)."),
        max_memory_gb: float | None = typer.Option(
            None,
            "--max-memory-gb",
            help="Memory budget of one report; larger scans are refused before reading "
            "(default: half the RAM).",
        ),
        allowed_hosts: list[str] = typer.Option(
            [],
            "--allowed-host",
            help="Host header value to serve besides the loopback names (repeatable).",
        ),
        max_new_tokens: int | None = typer.Option(
            None, "--max-new-tokens", help="Longest answer per question, in tokens (256)."
        ),
        config: Path | None = typer.Option(
            None, "--config", "-c", help="YAML with ServeSettings fields (mu2.web.settings)."
        ),
        overrides: list[str] = typer.Option(
            [], "--set", help="Alias of a positional KEY=VALUE (repeatable)."
        ),
        positional: list[str] = overrides_arg("ServeSettings overrides key=value."),
        log_level: str = typer.Option("info", "--log-level", help="uvicorn log level."),
    ) -> None:
        """Serve the CT report viewer and its JSON API (open http://HOST:PORT/)."""
        from mu2.config import load_config
        from mu2.extras import require

        require("web", "mu2 serve")
        from mu2.web.settings import ServeSettings

        problems = []
        if not 0 <= port <= 65535:
            problems.append(f"--port must lie in 0..65535, got {port}")
        if max_upload_mb is not None and max_upload_mb <= 0:
            problems.append(f"--max-upload-mb must be > 0, got {max_upload_mb}")
        if max_memory_gb is not None and max_memory_gb <= 0:
            problems.append(f"--max-memory-gb must be > 0, got {max_memory_gb}")
        if problems:
            raise Mu2Error("; ".join(problems), fix="see `mu2 serve --help`")
        flags = {
            "max_upload_bytes": None if max_upload_mb is None else int(max_upload_mb * MIB),
            "device": device,
            "generation.max_new_tokens": max_new_tokens,
            "max_memory_gb": max_memory_gb,
        }
        extra = [f"{k}={v}" for k, v in flags.items() if v is not None]
        settings = load_config(ServeSettings, config, [*merge(positional, overrides), *extra])
        if allowed_hosts:
            settings.allowed_hosts = [*settings.allowed_hosts, *allowed_hosts]
        if host not in LOOPBACK and host not in ("0.0.0.0", "::"):
            settings.allowed_hosts = [*settings.allowed_hosts, host]
        from mu2.generate.home import resolve_model_dir

        model_dir = resolve_model_dir(model)  # a missing model fails before the slow imports

        import uvicorn
        from transformers.utils import logging as hf_logging

        from mu2.web.app import create_app
        from mu2.web.guard import guarded_h11

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        print(f"mu2 serve: loading the model from {model_dir} ...", file=sys.stderr)
        web_app = create_app(model_dir, settings=settings)
        if host not in LOOPBACK:
            print(
                f"mu2 serve: warning: listening on {host}; the API has only its token, "
                "keep it on a trusted network",
                file=sys.stderr,
            )
        where = f"http://{host}:{port}/" if port else "the address uvicorn prints below"
        print(
            f"mu2 serve: model {web_app.state.service.generator.model_id}; "
            f"open {where} (Ctrl-C stops)",
            file=sys.stderr,
        )
        print(
            f"mu2 serve: API token {web_app.state.token} (send it as X-Mu2-Token on POST; "
            "the page does so itself)",
            file=sys.stderr,
        )
        uvicorn.run(
            web_app,
            host=host,
            port=port,
            log_level=log_level,
            http=guarded_h11(settings.header_timeout_s),
            h11_max_incomplete_event_size=settings.max_header_bytes,
            timeout_keep_alive=5,
        )

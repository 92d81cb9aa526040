"""What keeps a local `mu2 serve` safe to leave running: who may call it, and how.

A server on 127.0.0.1 is still reachable from every web page the user opens: a page can
POST a form to it (a CORS "simple" request needs no permission) and, through DNS
rebinding, even read the answers under its own host name. So:

* the ``Host`` header must name an allowed host (loopback names by default), which
  defeats DNS rebinding;
* a request that changes state (POST) must carry the per-process token in the
  ``X-Mu2-Token`` header (a custom header also forces a CORS preflight, which this server
  never grants) and, when the browser sends an ``Origin``, come from the page itself or
  an allowed origin;
* requests with too many headers are refused; every answer carries ``nosniff``, a
  content security policy for the page and no-framing headers;
* the HTTP protocol closes a connection that has not sent its request headers within
  ``header_timeout_s`` (half-open connections cannot pile up).

Refusals are JSON ``{"detail": "... -- fix: ..."}`` like every other error of the API.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

TOKEN_HEADER = "x-mu2-token"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
UNSAFE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:;"
        b" connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none';"
        b" form-action 'self'",
    ),
)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def new_token() -> str:
    """A fresh per-process token (printed at start-up, handed to the page)."""
    return secrets.token_urlsafe(24)


def _host_name(value: str) -> str:
    """'127.0.0.1:8000' -> '127.0.0.1'; '[::1]:8000' -> '::1'."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:].split("]", 1)[0]
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class GuardMiddleware:
    """Pure ASGI middleware: host, origin, token and header-count checks, security headers."""

    def __init__(
        self,
        app: Callable[[Scope, Receive, Send], Awaitable[None]],
        *,
        token: str,
        allowed_hosts: Iterable[str] = LOOPBACK_HOSTS,
        allowed_origins: Iterable[str] = (),
        max_headers: int = 64,
    ) -> None:
        self.app = app
        self.token = token
        self.hosts = {_host_name(h) for h in allowed_hosts}
        self.origins = {o.rstrip("/").lower() for o in allowed_origins}
        self.max_headers = max_headers

    def _refusal(self, scope: Scope) -> tuple[int, str, str] | None:
        headers: dict[str, str] = {}
        raw = scope.get("headers") or []
        if len(raw) > self.max_headers:
            return 431, f"{len(raw)} request headers (at most {self.max_headers})", "send fewer"
        for k, v in raw:
            headers.setdefault(k.decode("latin-1").lower(), v.decode("latin-1"))
        host = headers.get("host", "")
        if "*" not in self.hosts and _host_name(host) not in self.hosts:
            return (
                400,
                f"host '{host or '(none)'}' is not served here",
                "open the page at http://127.0.0.1:PORT/ (or start the server with "
                "allowed_hosts naming this host)",
            )
        if scope.get("method", "GET") not in UNSAFE_METHODS:
            return None
        origin = headers.get("origin")
        if origin is not None:
            same = {f"{scope.get('scheme', 'http')}://{host}".lower()}
            if origin.rstrip("/").lower() not in same | self.origins:
                return (
                    403,
                    f"requests from origin '{origin}' are not accepted",
                    "use the mu2 page itself, or start the server with allowed_origins naming it",
                )
        if not secrets.compare_digest(headers.get(TOKEN_HEADER, ""), self.token):
            return (
                403,
                "missing or wrong API token",
                f"send the token `mu2 serve` printed at start-up in the {TOKEN_HEADER} header",
            )
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_secured(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        refusal = self._refusal(scope)
        if refusal is None:
            await self.app(scope, receive, send_secured)
            return
        status, what, fix = refusal
        body = json.dumps({"detail": f"{what} -- fix: {fix}"}).encode()
        await send_secured(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send_secured({"type": "http.response.body", "body": body})


def guarded_h11(header_timeout_s: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol, closing connections that send no complete request head
    within ``header_timeout_s`` (uvicorn only times out idle keep-alive connections)."""

    class GuardedH11Protocol(H11Protocol):
        _head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._head_timer = self.loop.call_later(header_timeout_s, self._head_timeout)

        def _head_timeout(self) -> None:
            if self.scope is None and not self.transport.is_closing():
                self.transport.close()  # never sent a full request head

        def _cancel_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def handle_events(self) -> None:
            super().handle_events()
            if self.scope is not None:
                self._cancel_head_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_head_timer()
            super().connection_lost(exc)

    return GuardedH11Protocol

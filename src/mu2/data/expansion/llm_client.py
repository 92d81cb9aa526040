"""A client for OpenAI-compatible chat endpoints (vLLM, hosted APIs) with a disk cache.

Data set expansion sends thousands of near-identical prompts; a rerun must cost nothing
and a flaky server must not lose rows. So every answer that parses is cached on disk
under a hash of (model, messages, sampling parameters), and 5xx / 429 / connection
errors / malformed answers are retried a bounded number of times with exponential
backoff. Written on the standard library (urllib) on purpose: the ``openai`` package is
not a dependency and this needs one POST route only.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import random
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from mu2.errors import Mu2Error

log = logging.getLogger(__name__)

T = TypeVar("T")

CHAT_ROUTE = "/v1/chat/completions"
# Answers that mean the endpoint, model or key is wrong for every request: stop at once.
FATAL_STATUS = (401, 403, 404)
# Answers worth another try: the server is busy or broken for a moment.
RETRY_STATUS = (408, 409, 425, 429)


class ChatError(Exception):
    """One request failed for good (after its retries); the caller decides what to lose."""


class MalformedAnswer(ValueError):
    """The model answered, but not in the format the prompt asked for."""


def chat_url(base: str) -> str:
    """``http://host:8000``, ``.../v1`` or ``.../v1/chat/completions`` -> the full chat URL."""
    url = base.strip().rstrip("/")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise Mu2Error(
            f"'{base}' is not an http(s) URL",
            fix="write the server address, e.g. --llm openai:http://localhost:8000",
        )
    if url.endswith("/chat/completions"):
        return url
    if url.endswith("/v1"):
        return url + "/chat/completions"
    return url + CHAT_ROUTE


@dataclass
class ChatConfig:
    """Where to send prompts and how to sample; all of it but the URL is in the cache key."""

    url: str
    """Server address, with or without ``/v1``."""
    model: str = "gpt-4o-mini"
    """Model name the server knows (the paper used GPT-4o mini)."""
    temperature: float = 0.7
    """Sampling temperature; > 0 so that the N rewrites differ."""
    max_tokens: int = 2048
    """Upper bound on the answer length in tokens."""
    seed: int | None = 0
    """Sampling seed sent to the server (vLLM honours it); retries shift it by the attempt."""
    timeout_s: float = 120.0
    """Seconds to wait for one answer."""
    max_retries: int = 3
    """Extra tries after a 5xx / 429 / connection error / malformed answer."""
    backoff_s: float = 1.0
    """First wait between tries; doubles each retry (with jitter)."""
    backoff_max_s: float = 30.0
    """Cap on one wait."""

    def __post_init__(self) -> None:
        self.url = chat_url(self.url)
        if self.max_retries < 0:
            raise Mu2Error(f"max_retries must be >= 0, got {self.max_retries}")
        if self.temperature < 0:
            raise Mu2Error(f"temperature must be >= 0, got {self.temperature}")
        if self.timeout_s <= 0:
            raise Mu2Error(f"timeout_s must be > 0, got {self.timeout_s}")


class ResponseCache:
    """One JSON file per answer, named by the request hash; safe across threads and reruns."""

    def __init__(self, directory: str | Path):
        self.dir = Path(directory)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise Mu2Error(
                f"cannot create the LLM cache folder ({err.strerror})",
                path=str(self.dir),
                fix="pass a writable --cache-dir",
            ) from None

    def _path(self, key: str) -> Path:
        return self.dir / key[:2] / f"{key}.json"

    def get(self, key: str) -> str | None:
        path = self._path(key)
        try:
            return json.loads(path.read_text(encoding="utf-8"))["content"]
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def put(self, key: str, request: dict[str, Any], content: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write to a temporary file and rename, so a crash never leaves half a JSON file.
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"request": request, "content": content}, fh)
        os.replace(tmp, path)

    def drop(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


class ChatClient:
    """Sends chat requests; thread-safe, so a thread pool can share one client."""

    def __init__(
        self,
        cfg: ChatConfig,
        cache_dir: str | Path | None = None,
        api_key: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.cfg = cfg
        self.cache = ResponseCache(cache_dir) if cache_dir is not None else None
        self._api_key = api_key
        self._sleep = sleep
        self._lock = threading.Lock()
        self.stats = {"http_requests": 0, "cache_hits": 0, "retries": 0, "failed": 0}

    def _count(self, name: str) -> None:
        with self._lock:
            self.stats[name] += 1

    def _body(self, messages: list[dict[str, str]], attempt: int) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.cfg.model,
            "messages": messages,
            "temperature": self.cfg.temperature,
            "max_tokens": self.cfg.max_tokens,
        }
        if self.cfg.seed is not None:
            # A retry after a malformed answer must not draw the same answer again.
            body["seed"] = self.cfg.seed + attempt
        return body

    def cache_key(self, messages: list[dict[str, str]]) -> str:
        """Hash of everything that shapes the answer (not the URL, not the key)."""
        blob = json.dumps(self._body(messages, 0), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def _post(self, body: dict[str, Any]) -> str:
        data = json.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        req = urllib.request.Request(self.cfg.url, data=data, headers=headers, method="POST")
        self._count("http_requests")
        with urllib.request.urlopen(req, timeout=self.cfg.timeout_s) as resp:
            payload = json.loads(resp.read().decode("utf-8"))
        try:
            content = payload["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise MalformedAnswer("no choices[0].message.content in the answer") from None
        if not isinstance(content, str):
            raise MalformedAnswer("message content is not a string")
        return content

    def complete(self, messages: list[dict[str, str]], parse: Callable[[str], T]) -> T:
        """Answer ``messages`` parsed by ``parse`` (which raises MalformedAnswer on bad text).

        Raises ChatError when every try failed, Mu2Error when the endpoint itself is wrong.
        """
        key = self.cache_key(messages)
        if self.cache is not None:
            cached = self.cache.get(key)
            if cached is not None:
                try:
                    value = parse(cached)
                except MalformedAnswer:
                    self.cache.drop(key)  # parser got stricter since: ask again
                else:
                    self._count("cache_hits")
                    return value
        last = "no try made"
        for attempt in range(self.cfg.max_retries + 1):
            if attempt:
                self._count("retries")
                wait = min(self.cfg.backoff_max_s, self.cfg.backoff_s * 2 ** (attempt - 1))
                self._sleep(wait * (0.5 + random.random() / 2))
            body = self._body(messages, attempt)
            try:
                content = self._post(body)
                value = parse(content)
            except urllib.error.HTTPError as err:
                if err.code in FATAL_STATUS:
                    raise Mu2Error(
                        f"LLM endpoint answered HTTP {err.code} for model '{self.cfg.model}'",
                        path=self.cfg.url,
                        fix="check the --llm URL, --llm-model and the API key variable",
                    ) from None
                last = f"HTTP {err.code}"
                if err.code < 500 and err.code not in RETRY_STATUS:
                    break  # this request is bad (e.g. too long): another try will not help
            except (http.client.HTTPException, OSError) as err:  # URLError, timeouts, resets
                last = f"connection error ({getattr(err, 'reason', err)})"
            except (MalformedAnswer, ValueError) as err:
                last = f"malformed answer ({err})"
            else:
                if self.cache is not None:
                    self.cache.put(key, self._body(messages, 0), content)
                return value
            log.debug("LLM request failed (try %d): %s", attempt + 1, last)
        self._count("failed")
        raise ChatError(last)

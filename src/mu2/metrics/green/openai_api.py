"""A GREEN judge behind an OpenAI-compatible server (vLLM serving a GREEN model).

The published answers are reproduced when the server gets the same token ids as the local
client with temperature 0 and ``max_tokens = 2048 - prompt length``; pass the judge's
tokenizer folder so mu2 builds those ids. Without it mu2 sends the chat-wrapped text and
asks the server (vLLM's ``/tokenize``) for the prompt length. ``mode="chat"`` is for
generic chat servers: the server applies its own chat template, so it is not the
published wrapping. Standard library HTTP only (urllib): nothing else is needed.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from mu2.errors import Mu2Error
from mu2.metrics.green.hf import GREEN_BATCH_SIZE, GREEN_MAX_LENGTH, encode_prompts
from mu2.metrics.green.prompt import make_prompt, render_chat

log = logging.getLogger(__name__)

RETRY_STATUS = (408, 425, 429, 500, 502, 503, 504)
# Used only when neither a tokenizer nor the server's /tokenize gives the prompt length.
FALLBACK_MAX_TOKENS = 1024


def _choice(reply: dict[str, Any], *keys: str) -> str:
    """The first choice's text, or a clear error for a reply that is not OpenAI-shaped."""
    try:
        value: Any = reply["choices"][0]
        for key in keys:
            value = value[key]
    except (KeyError, IndexError, TypeError):
        raise Mu2Error(
            f"GREEN server reply has no choices[0].{'.'.join(keys)}: {json.dumps(reply)[:200]}"
        ) from None
    return value or ""


class OpenAIJudge:
    """Sends one request per prompt (``concurrency`` at a time) and returns the answer texts."""

    offline = False

    def __init__(
        self,
        url: str,
        *,
        model: str | None = None,
        tokenizer: str | Path | None = None,
        mode: str = "completions",
        max_length: int = GREEN_MAX_LENGTH,
        concurrency: int = GREEN_BATCH_SIZE,
        retries: int = 5,
        backoff_s: float = 1.0,
        timeout_s: float = 600.0,
        api_key: str | None = None,
        progress: bool = True,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise Mu2Error(
                f"GREEN server URL '{url}' must start with http:// or https://",
                fix="e.g. --green-backend openai:http://127.0.0.1:8000/v1",
            )
        if mode not in ("completions", "chat"):
            raise Mu2Error(f"unknown OpenAI mode '{mode}'", fix="use completions or chat")
        root = url.rstrip("/")
        self.base = root if root.endswith("/v1") else root + "/v1"
        self.server = self.base[: -len("/v1")]
        self.mode = mode
        self.max_length = max_length
        self.concurrency = max(1, concurrency)
        self.retries = max(1, retries)
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self.api_key = api_key
        self.progress = progress
        self.tokenizer = None
        if tokenizer is not None:
            from mu2.metrics.green.hf import load_judge_tokenizer

            self.tokenizer = load_judge_tokenizer(tokenizer)
        self.model = model or self._first_model()
        self.name = f"openai:{self.model}"
        self.label = f"GREEN (judge {self.model} at {self.base})"

    # --- HTTP -------------------------------------------------------------------------
    def _request(self, url: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        data = None if payload is None else json.dumps(payload).encode()
        last = ""
        for attempt in range(self.retries):
            req = urllib.request.Request(url, data=data, headers=headers)
            try:
                with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                    return json.loads(resp.read().decode())
            except urllib.error.HTTPError as err:
                body = err.read().decode(errors="replace")[:300]
                if err.code not in RETRY_STATUS:
                    raise Mu2Error(
                        f"GREEN server {url} answered {err.code}: {body}",
                        fix="check the model name and the request limits",
                    ) from None
                last = f"HTTP {err.code}: {body}"
            except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
                last = str(getattr(err, "reason", err))
            if attempt + 1 < self.retries:
                delay = self.backoff_s * 2**attempt
                log.warning("GREEN server %s: %s; retrying in %.1f s", url, last, delay)
                time.sleep(delay)
        raise Mu2Error(
            f"GREEN server {url} failed after {self.retries} tries ({last})",
            fix="start the server (e.g. vllm serve MODEL) or check the URL",
        )

    def _first_model(self) -> str:
        listing = self._request(f"{self.base}/models")
        models = [m.get("id") for m in listing.get("data", []) if m.get("id")]
        if not models:
            raise Mu2Error(
                f"GREEN server {self.base} lists no models",
                fix="pass the served model name (--green-model NAME)",
            )
        return models[0]

    def _prompt_length(self, text: str) -> int | None:
        """Prompt length in tokens from vLLM's /tokenize, or None if the server has none."""
        try:
            reply = self._request(f"{self.server}/tokenize", {"model": self.model, "prompt": text})
        except Mu2Error:
            return None
        return reply.get("count", len(reply.get("tokens", []))) or None

    # --- judging ----------------------------------------------------------------------
    def _max_tokens(self, prompt_len: int | None) -> int:
        if prompt_len is None:
            log.warning("GREEN server: prompt length unknown; max_tokens=%d", FALLBACK_MAX_TOKENS)
            return FALLBACK_MAX_TOKENS
        return max(1, self.max_length - prompt_len)

    def _ask(self, prompt: str, ids: list[int] | None) -> str:
        body: dict[str, Any] = {"model": self.model, "temperature": 0.0}
        if self.mode == "chat":
            body["messages"] = [{"role": "user", "content": prompt}]
            body["max_tokens"] = self._max_tokens(None if ids is None else len(ids))
            reply = self._request(f"{self.base}/chat/completions", body)
            return _choice(reply, "message", "content")
        if ids is not None:
            body["prompt"] = ids
            body["max_tokens"] = self._max_tokens(len(ids))
        else:
            text = render_chat(prompt)
            body["prompt"] = text
            body["max_tokens"] = self._max_tokens(self._prompt_length(text))
        reply = self._request(f"{self.base}/completions", body)
        return _choice(reply, "text")

    def answers(self, pairs: Sequence[tuple[str, str]]) -> list[str]:
        from tqdm.auto import tqdm

        prompts = [make_prompt(ref, cand) for ref, cand in pairs]
        ids: list[list[int] | None] = [None] * len(prompts)
        if self.tokenizer is not None:
            ids = list(encode_prompts(self.tokenizer, prompts, self.max_length))
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            jobs = pool.map(self._ask, prompts, ids)
            return list(
                tqdm(jobs, total=len(prompts), desc="GREEN judge", disable=not self.progress)
            )

"""The LLM path against a real local HTTP chat endpoint: the client (cache, retries,
fatal answers) and the augmentation backend (malformed answers, HTTP 500, concurrency).

The endpoint is a ``http.server`` on 127.0.0.1 speaking the OpenAI chat-completions wire
format (POST /v1/chat/completions, answer in ``choices[0].message.content``), which is all
mu2's client uses; an answering function returns ``(status, content)`` so a test can
script 500s and malformed answers.
"""

from __future__ import annotations

import json
import random
import re
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mu2.data.expansion.augment import TextAugmentConfig, augment_rows
from mu2.data.expansion.llm_client import (
    ChatClient,
    ChatConfig,
    ChatError,
    MalformedAnswer,
    chat_url,
)
from mu2.data.expansion.rewrite_llm import LLMBackend
from mu2.errors import Mu2Error
from mu2.findings.catalogue import Finding
from mu2.findings.extract import extract_findings
from mu2.findings.writer import write_question, write_report

# (status, content): content is the message text, or a dict sent as the whole payload.
Answer = Callable[[dict], tuple[int, "str | dict"]]


class ChatServer:
    """``with ChatServer(answer) as server: ... server.url ... server.requests``."""

    def __init__(self, answer: Answer, delay_s: float = 0.0):
        self.answer = answer
        self.delay_s = delay_s
        self.requests: list[dict] = []
        self.headers: list[dict[str, str]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> ChatServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

            def _send(self, status: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                if self.path != "/v1/chat/completions":
                    self._send(404, {"error": {"message": f"no route {self.path}"}})
                    return
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with owner._lock:
                    owner.requests.append(body)
                    owner.headers.append(dict(self.headers))
                    owner.in_flight += 1
                    owner.max_in_flight = max(owner.max_in_flight, owner.in_flight)
                try:
                    time.sleep(owner.delay_s)
                    status, content = owner.answer(body)
                finally:
                    with owner._lock:
                        owner.in_flight -= 1
                if status != 200:
                    self._send(status, {"error": {"message": content}})
                    return
                if isinstance(content, dict):  # a raw payload, e.g. one without "choices"
                    self._send(200, content)
                    return
                self._send(
                    200,
                    {
                        "id": f"chatcmpl-{len(owner.requests)}",
                        "object": "chat.completion",
                        "model": body.get("model"),
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": content},
                                "finish_reason": "stop",
                            }
                        ],
                    },
                )

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hi."}]


def parse_hi(content: str) -> str:
    data = json.loads(content) if content.startswith("{") else None
    if not isinstance(data, dict) or "text" not in data:
        raise MalformedAnswer("want {'text': ...}")
    return data["text"]


def client(url: str, tmp_path, **kw) -> ChatClient:
    kw.setdefault("backoff_s", 0.001)
    api_key = kw.pop("api_key", None)
    return ChatClient(ChatConfig(url=url, model="tiny", **kw), tmp_path / "cache", api_key)


def scripted(*answers: tuple[int, str]):
    """Answer the n-th request with answers[n]; the last one repeats."""
    calls = iter(answers)
    last = answers[-1]

    def answer(body: dict) -> tuple[int, str]:
        return next(calls, last)

    return answer


@pytest.mark.parametrize(
    "base",
    [
        "http://h:8000",
        "http://h:8000/",
        "http://h:8000/v1",
        "http://h:8000/v1/",
        "http://h:8000/v1/chat/completions",
    ],
)
def test_chat_url_with_or_without_v1(base: str) -> None:
    assert chat_url(base) == "http://h:8000/v1/chat/completions"


@pytest.mark.parametrize("bad", ["localhost:8000", "ftp://h/v1", "http://", ""])
def test_chat_url_rejects_non_http(bad: str) -> None:
    with pytest.raises(Mu2Error, match="not an http"):
        chat_url(bad)


def test_rerun_hits_the_cache_with_zero_requests(tmp_path) -> None:
    with ChatServer(scripted((200, '{"text": "hi"}'))) as server:
        first = client(server.url + "/v1", tmp_path)
        assert first.complete(MESSAGES, parse_hi) == "hi"
        assert len(server.requests) == 1
        second = client(server.url, tmp_path)  # a new process would start like this
        assert second.complete(MESSAGES, parse_hi) == "hi"
        assert len(server.requests) == 1
        assert second.stats["http_requests"] == 0 and second.stats["cache_hits"] == 1
        # Another prompt or other sampling parameters are another key.
        client(server.url, tmp_path, temperature=0.1).complete(MESSAGES, parse_hi)
        assert len(server.requests) == 2


def test_request_body_and_api_key(tmp_path) -> None:
    with ChatServer(scripted((200, '{"text": "hi"}'))) as server:
        client(server.url, tmp_path, api_key="sk-test", temperature=0.3).complete(
            MESSAGES, parse_hi
        )
        body, headers = server.requests[0], server.headers[0]
    assert body["model"] == "tiny" and body["messages"] == MESSAGES
    assert body["temperature"] == 0.3 and body["seed"] == 0
    assert headers["Authorization"] == "Bearer sk-test"
    cached = "".join(p.read_text() for p in (tmp_path / "cache").rglob("*.json"))
    assert "sk-test" not in cached and '"content": "{\\"text\\": \\"hi\\"}"' in cached


def test_http_500_is_retried(tmp_path) -> None:
    with ChatServer(scripted((500, "boom"), (502, "bad gateway"), (200, '{"text": "ok"}'))) as s:
        c = client(s.url, tmp_path, max_retries=3)
        assert c.complete(MESSAGES, parse_hi) == "ok"
        assert len(s.requests) == 3 and c.stats["retries"] == 2


def test_malformed_answer_is_retried_with_another_seed_and_not_cached(tmp_path) -> None:
    with ChatServer(scripted((200, "Sure! Here you go: hi"), (200, '{"text": "ok"}'))) as s:
        c = client(s.url, tmp_path, max_retries=1)
        assert c.complete(MESSAGES, parse_hi) == "ok"
        assert [r["seed"] for r in s.requests] == [0, 1]
        # The rerun gets the good answer from the cache, not the malformed one.
        assert client(s.url, tmp_path).complete(MESSAGES, parse_hi) == "ok"
        assert len(s.requests) == 2


def test_answer_without_choices_is_malformed(tmp_path) -> None:
    with ChatServer(scripted((200, {"object": "error"}), (200, '{"text": "ok"}'))) as s:
        c = client(s.url + "/v1/chat/completions", tmp_path, max_retries=1)  # full route too
        assert c.complete(MESSAGES, parse_hi) == "ok"
        assert len(s.requests) == 2 and c.stats["retries"] == 1


def test_bounded_retries_then_chat_error(tmp_path) -> None:
    with ChatServer(scripted((500, "down"))) as s:
        c = client(s.url, tmp_path, max_retries=2)
        with pytest.raises(ChatError, match="HTTP 500"):
            c.complete(MESSAGES, parse_hi)
        assert len(s.requests) == 3 and c.stats["failed"] == 1


def test_client_error_is_not_retried(tmp_path) -> None:
    with ChatServer(scripted((400, "prompt too long"))) as s:
        with pytest.raises(ChatError, match="HTTP 400"):
            client(s.url, tmp_path, max_retries=3).complete(MESSAGES, parse_hi)
        assert len(s.requests) == 1


@pytest.mark.parametrize("status", [401, 404])
def test_wrong_endpoint_or_key_is_a_user_error(tmp_path, status: int) -> None:
    with ChatServer(scripted((status, "nope"))) as s:
        with pytest.raises(Mu2Error, match=f"HTTP {status}.*--llm-model"):
            client(s.url, tmp_path).complete(MESSAGES, parse_hi)
        assert len(s.requests) == 1


def test_connection_refused_is_retried_then_fails(tmp_path) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    c = client(f"http://127.0.0.1:{port}", tmp_path, max_retries=2, timeout_s=2)
    with pytest.raises(ChatError, match="connection error"):
        c.complete(MESSAGES, parse_hi)
    assert c.stats["retries"] == 2


def test_bad_config_values() -> None:
    with pytest.raises(Mu2Error, match="max_retries"):
        ChatConfig(url="http://h", max_retries=-1)
    with pytest.raises(Mu2Error, match="temperature"):
        ChatConfig(url="http://h", temperature=-0.5)


# --- the augmentation backend over the endpoint ---------------------------------------------


def make_row(i: int, region: str, findings: list[Finding], rng: random.Random) -> dict:
    return {
        "id": f"c{i}-{region}",
        "case_id": f"c{i}",
        "image": f"images/c{i}.nii.gz",
        "question": write_question(region, rng),
        "answer": write_report(findings, region, rng),
        "findings": [f.to_dict() for f in findings],
        "region": region,
        "task": "report",
        "dataset": "synth",
    }


def findings_of(row: dict) -> list[tuple]:
    return sorted(
        (f.finding, f.side, f.size_mm, f.severity, f.count, f.extra.get("comparison"))
        for f in extract_findings(row["answer"], row["region"])
    )


def _report_in(body: dict) -> str:
    return body["messages"][-1]["content"].split("Report:\n", 1)[1]


class FakeLLM:
    """Answers like a chat model: 2 faithful rewrites and 3 bad ones; 2 good QA pairs and
    one that contradicts the report. The first rewrite request for ``malformed_for`` gets
    prose instead of JSON, the first QA request for ``error_for`` an HTTP 500."""

    def __init__(self, malformed_for: str, error_for: str):
        self.malformed_for, self.error_for = malformed_for, error_for
        self.failed: set[tuple[str, str]] = set()

    def __call__(self, body: dict) -> tuple[int, str]:
        report = _report_in(body)
        kind = "qa" if "question-answer" in body["messages"][-1]["content"] else "rewrite"
        if (kind, report) not in self.failed:
            if kind == "rewrite" and report == self.malformed_for:
                self.failed.add((kind, report))
                return 200, "Sure! Here are four rewrites of the report: ..."
            if kind == "qa" and report == self.error_for:
                self.failed.add((kind, report))
                return 500, "CUDA out of memory"
        if kind == "rewrite":
            sentences = re.split(r"(?<=\.)\s+", report)
            rewrites = [
                "Findings: " + report,
                " ".join(reversed(sentences)) if len(sentences) > 1 else report + " End.",
                report + " There is a 25 mm hepatic metastasis.",
                "报告：" + report,
                "Normal study.",
            ]
            return 200, "```json\n" + json.dumps({"rewrites": rewrites}) + "\n```"
        qa = [
            {"question": "Is there a liver metastasis?", "answer": "No."},
            {"question": "What are the findings?", "answer": report},
            {
                "question": "Is there a right renal cyst?",
                "answer": "Yes, a 45 mm right renal cyst.",
            },
        ]
        return 200, json.dumps({"qa": qa})


CYST_AND_FAT = [
    Finding("kidney", "renal_cyst", side="left", size_mm=18.0),
    Finding("liver", "fatty_liver", severity="moderate"),
]


def llm_rows() -> list[dict]:
    rng = random.Random(7)
    return [
        make_row(0, "abdomen", CYST_AND_FAT, rng),
        make_row(1, "chest", [Finding("lung", "lung_nodule", side="right", size_mm=8.0)], rng),
        make_row(2, "pelvis", [], rng),
        make_row(3, "abdomen", [Finding("gallbladder", "gallstone", size_mm=12.0, count=2)], rng),
    ]


def llm_backend(url: str, cache, max_retries: int, concurrency: int = 3) -> LLMBackend:
    cfg = ChatConfig(url=url, model="tiny", max_retries=max_retries, backoff_s=0.001)
    return LLMBackend(ChatClient(cfg, cache_dir=cache), concurrency=concurrency)


def test_llm_backend_survives_malformed_answer_and_http_500_then_caches(tmp_path) -> None:
    rows = llm_rows()
    fake = FakeLLM(malformed_for=rows[1]["answer"], error_for=rows[2]["answer"])
    cfg = TextAugmentConfig(rewrites=5, qa=3)
    with ChatServer(fake) as server:
        backend = llm_backend(server.url, tmp_path / "cache", max_retries=2)
        out, summary = augment_rows(rows, backend, cfg)
        assert len(server.requests) == 2 * len(rows) + 2  # one retry each for the 2 failures
        assert backend.client.stats["retries"] == 2
        assert summary.requests_failed == 0
        assert summary.rewrites_kept == 2 * len(rows)
        assert summary.rewrites_dropped == {
            "finding_added": 4,
            "non_english": 4,
            "too_short": 4,
        }
        assert summary.qa_kept == 2 * len(rows)
        assert summary.qa_dropped == {"answer_contradicts_report": 4}
        for r in out[len(rows) :]:
            src = next(s for s in rows if s["id"] == r["source_id"])
            if r["augmented"] == "rewrite":
                assert findings_of(r) == findings_of(src)

        # A rerun with a fresh client costs nothing: every answer comes from the cache.
        server.requests.clear()
        again, _ = augment_rows(rows, llm_backend(server.url, tmp_path / "cache", 2), cfg)
        assert server.requests == [] and again == out


def test_llm_failures_lose_only_their_own_rows(tmp_path) -> None:
    rows = llm_rows()
    fake = FakeLLM(malformed_for=rows[1]["answer"], error_for=rows[2]["answer"])
    with ChatServer(fake) as server:
        backend = llm_backend(server.url, tmp_path / "cache", max_retries=0)
        out, summary = augment_rows(rows, backend, TextAugmentConfig(rewrites=5, qa=3))
    assert summary.requests_failed == 2
    assert out[: len(rows)] == rows
    made = {(r["source_id"], r["augmented"]) for r in out[len(rows) :]}
    assert (rows[1]["id"], "rewrite") not in made and (rows[2]["id"], "qa") not in made
    assert (rows[1]["id"], "qa") in made and (rows[2]["id"], "rewrite") in made
    assert summary.rewrites_kept == 2 * 3 and summary.qa_kept == 2 * 3


def test_llm_wrong_model_stops_the_run(tmp_path) -> None:
    with ChatServer(lambda body: (404, "model 'tiny' does not exist")) as server:
        with pytest.raises(Mu2Error, match="HTTP 404"):
            augment_rows(llm_rows(), llm_backend(server.url, None, 3, 1), TextAugmentConfig())
        assert len(server.requests) <= 2  # no retries; the rest of the queue is cancelled


def test_llm_concurrency_limit(tmp_path) -> None:
    rows = [make_row(i, "abdomen", CYST_AND_FAT, random.Random(i)) for i in range(8)]
    fake = FakeLLM(malformed_for="", error_for="")
    with ChatServer(fake, delay_s=0.05) as server:
        augment_rows(rows, llm_backend(server.url, None, 0, concurrency=2), TextAugmentConfig())
    assert server.max_in_flight == 2 and len(server.requests) == 16

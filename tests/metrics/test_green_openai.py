"""The OpenAI-compatible judge client against a small local server with canned GREEN answers."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mu2.errors import Mu2Error
from mu2.metrics.green import make_judge, make_prompt, render_chat
from mu2.metrics.green.score import green_corpus

GOOD = "Small left pleural effusion."
BAD = "Large right pleural effusion."
ANSWER_GOOD = "[Explanation]:\nSame.\n\n[Clinically Significant Errors]:\n(a) x: 0.\n\n[Matched Findings]:\n1. effusion."
ANSWER_BAD = (
    "[Explanation]:\nSide.\n\n[Clinically Significant Errors]:\n(c) Location: 1. side.\n"
    "(d) Severity: 1. size.\n\n[Matched Findings]:\n1. effusion."
)
TOKENS_PER_PROMPT = 700  # what the fake /tokenize reports


class _Server:
    """Records requests; fails the first ``fail_first`` completions with 503."""

    def __init__(self, fail_first: int = 0, tokenize: bool = True) -> None:
        self.requests: list[tuple[str, dict]] = []
        self.fail_left = fail_first
        self.tokenize = tokenize
        state = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def _send(self, code: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path == "/v1/models":
                    self._send(200, {"object": "list", "data": [{"id": "green-test"}]})
                else:
                    self._send(404, {"error": "not found"})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                state.requests.append((self.path, body))
                if self.path == "/tokenize" and state.tokenize:
                    self._send(200, {"count": TOKENS_PER_PROMPT, "tokens": []})
                elif self.path == "/v1/completions":
                    if state.fail_left > 0:
                        state.fail_left -= 1
                        self._send(503, {"error": "busy"})
                        return
                    prompt = body["prompt"]
                    text = prompt if isinstance(prompt, str) else f"ids:{len(prompt)}"
                    answer = ANSWER_BAD if BAD in text else ANSWER_GOOD
                    self._send(200, {"choices": [{"index": 0, "text": answer}]})
                elif self.path == "/v1/chat/completions":
                    content = body["messages"][0]["content"]
                    answer = ANSWER_BAD if BAD in content else ANSWER_GOOD
                    self._send(200, {"choices": [{"message": {"content": answer}}]})
                else:
                    self._send(404, {"error": "not found"})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> _Server:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_text_prompts_temperature_zero_and_max_tokens() -> None:
    with _Server() as server:
        judge = make_judge(f"openai:{server.url}", progress=False)
        assert judge.model == "green-test" and not judge.offline
        result = green_corpus(judge, [GOOD, GOOD], [GOOD, BAD])
    assert list(result.scores) == [1.0, 1 / 3]
    completions = [b for p, b in server.requests if p == "/v1/completions"]
    assert len(completions) == 2
    for body in completions:
        assert body["model"] == "green-test" and body["temperature"] == 0
        assert body["max_tokens"] == 2048 - TOKENS_PER_PROMPT
    assert {b["prompt"] for b in completions} == {
        render_chat(make_prompt(GOOD, GOOD)),
        render_chat(make_prompt(GOOD, BAD)),
    }


def test_retries_with_backoff_after_server_errors() -> None:
    with _Server(fail_first=2, tokenize=False) as server:
        judge = make_judge(f"openai:{server.url}", backoff_s=0.01, progress=False)
        assert judge.answers([(GOOD, GOOD)]) == [ANSWER_GOOD]
    posts = [p for p, _ in server.requests if p == "/v1/completions"]
    assert len(posts) == 3
    # Without /tokenize the client falls back to a fixed answer budget.
    assert server.requests[-1][1]["max_tokens"] > 0


def test_gives_up_with_a_clear_error() -> None:
    with _Server(fail_first=10) as server:
        judge = make_judge(f"openai:{server.url}", retries=2, backoff_s=0.01, progress=False)
        with pytest.raises(Mu2Error, match="failed after 2 tries"):
            judge.answers([(GOOD, GOOD)])


def test_token_id_prompts_from_the_judge_tokenizer(tmp_path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = sorted(set(make_prompt(GOOD, BAD).split()) | {"<|user|>", "<|assistant|>"})
    vocab = {w: i for i, w in enumerate(["<unk>", "<s>", "</s>", *words])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="</s>", unk_token="<unk>"
    ).save_pretrained(tmp_path)
    with _Server() as server:
        judge = make_judge(f"openai:{server.url}", tokenizer=tmp_path, model="m", progress=False)
        judge.answers([(GOOD, BAD)])
    ((path, body),) = server.requests
    ids = body["prompt"]
    assert path == "/v1/completions" and body["model"] == "m"
    assert all(isinstance(i, int) for i in ids) and ids[-1] == vocab["</s>"]
    assert body["max_tokens"] == 2048 - len(ids)


def test_chat_mode_and_bad_urls() -> None:
    with _Server() as server:
        judge = make_judge(f"openai:{server.url}", mode="chat", progress=False)
        assert judge.answers([(GOOD, BAD)]) == [ANSWER_BAD]
    with pytest.raises(Mu2Error, match="must start with http"):
        make_judge("openai:localhost:8000")

"""The OpenAI-compatible teacher: against the real `r1kit serve` and small stdlib stubs, all on loopback."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

pytest.importorskip("openai")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from r1kit.errors import R1kitError
from r1kit.models import build_char_tokenizer, build_tiny_model, save_model
from r1kit.serve import ServedModel, running
from r1kit.teachers import Teacher, load_teacher
from r1kit.teachers.openai_compat import is_local

PROMPTS = ["1+2", "3*4", "10-7", "8/2"]


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    tokenizer = build_char_tokenizer()
    out = tmp_path_factory.mktemp("teacher") / "tiny"
    save_model(build_tiny_model("tiny-1m", tokenizer, seed=3), tokenizer, out,
               prompt_info={"style": "compact", "chat": False})
    with running(ServedModel.load(str(out), name="tiny", max_tokens_limit=8)) as base_url:
        yield base_url


@pytest.mark.parametrize("mode", ["chat", "completions"])
def test_n_completions_per_prompt_in_order(url, mode):
    teacher = load_teacher("openai:tiny", base_url=url, mode=mode, concurrency=3, max_retries=0)
    assert isinstance(teacher, Teacher) and teacher.name == "openai:tiny" and teacher.style == "think"
    done = []
    texts = teacher.generate(PROMPTS, n=3, max_tokens=6, temperature=1.0, seed=5, progress=done.append)
    assert len(texts) == len(PROMPTS) and all(len(row) == 3 and all(isinstance(t, str) for t in row) for row in texts)
    assert sum(done) == len(PROMPTS)
    greedy = teacher.generate(PROMPTS, n=2, max_tokens=6, temperature=0)
    assert greedy == [teacher.generate([prompt], n=2, max_tokens=6, temperature=0)[0] for prompt in PROMPTS]


def test_unknown_model_names_the_served_ones(url):
    with pytest.raises(R1kitError, match="model 'nope' is not served at .*it has: tiny"):
        load_teacher("openai:nope", base_url=url, max_retries=0).generate(["1+1"], max_tokens=2)


# ---------------------------------------------------------------- stubs


class Stub:
    """A loopback HTTP server answering scripted (status, headers, body) replies, then `final` forever."""

    def __init__(self, replies: list[tuple[int, dict, dict]], final: tuple[int, dict, dict]) -> None:
        self.replies, self.final, self.requests = list(replies), final, []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stub.requests.append((self.path, body, self.headers.get("Authorization")))
                status, headers, answer = stub.replies.pop(0) if stub.replies else stub.final
                data = json.dumps(answer).encode()
                self.send_response(status)
                for key, value in {"Content-Type": "application/json", "Content-Length": str(len(data)), **headers}.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST

            def log_message(self, *args) -> None:  # keep test output clean
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def completion(*texts: str) -> dict:
    return {"id": "x", "object": "chat.completion", "created": 0, "model": "m",
            "choices": [{"index": i, "message": {"role": "assistant", "content": t}, "finish_reason": "stop"}
                        for i, t in enumerate(texts)]}


def error(message: str) -> dict:
    return {"error": {"message": message, "type": "server_error", "param": None, "code": None}}


@pytest.fixture
def stub():
    stubs = []

    def make(replies, final=None):
        stubs.append(Stub(replies, final or (200, {}, completion("<answer>4</answer>"))))
        return stubs[-1]

    yield make
    for s in stubs:
        s.close()


@pytest.mark.parametrize("status, headers", [(500, {}), (429, {"Retry-After": "0"})])
def test_retries_then_succeeds(stub, status, headers, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    server = stub([(status, headers, error("busy"))])
    teacher = load_teacher("openai:m", base_url=server.url, max_retries=2, timeout=10)
    assert teacher.generate(["2+2"], max_tokens=8) == [["<answer>4</answer>"]]
    assert len(server.requests) == 2 and server.requests[0][0] == "/v1/chat/completions"
    assert server.requests[0][2] == "Bearer EMPTY"  # loopback without a key


def test_server_errors_after_retries_are_one_clear_error(stub):
    server = stub([], final=(503, {}, error("overloaded")))
    with pytest.raises(R1kitError, match=r"answered 503 \(after 1 retries\): overloaded"):
        load_teacher("openai:m", base_url=server.url, max_retries=1, timeout=10).generate(["2+2"])
    assert len(server.requests) == 2


def test_servers_that_ignore_n_are_asked_again(stub):
    server = stub([], final=(200, {}, completion("a")))  # like Ollama: one choice, whatever n asks
    texts = load_teacher("openai:m", base_url=server.url, max_retries=0, system_prompt="Think.").generate(
        ["q"], n=3, seed=4)
    assert texts == [["a", "a", "a"]] and len(server.requests) == 3
    first, *rest = (body for _, body, _ in server.requests)
    assert first["n"] == 3 and first["seed"] == 4 and [b["n"] for b in rest] == [1, 1]
    assert [b["seed"] for b in rest] == [5, 6]  # the retries differ, or a seeded server repeats itself
    assert first["messages"] == [{"role": "system", "content": "Think."}, {"role": "user", "content": "q"}]


def test_completions_are_bounded(stub):
    server = stub([], final=(200, {}, completion("x" * 5000, None)))
    texts = load_teacher("openai:m", base_url=server.url, max_retries=0, max_chars=100).generate(["q"], n=2)
    assert texts == [["x" * 100, ""]]


def test_unreachable_endpoint_is_one_clear_error():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    teacher = load_teacher("openai:m", base_url=f"http://127.0.0.1:{port}/v1", max_retries=1, timeout=5)
    with pytest.raises(R1kitError) as caught:
        teacher.generate(["1+1", "2+2"])
    message = str(caught.value)
    assert message.startswith(f"cannot reach http://127.0.0.1:{port}/v1") and "r1kit serve --model" in message
    assert "\n" not in message


def test_authentication_errors_name_the_variable(stub, monkeypatch):
    server = stub([], final=(401, {}, error("Incorrect API key provided")))
    monkeypatch.setenv("MY_KEY", "sk-wrong")
    teacher = load_teacher("openai:m", base_url=server.url, api_key_env="MY_KEY", max_retries=0)
    with pytest.raises(R1kitError, match="Incorrect API key provided.*set MY_KEY to a valid key"):
        teacher.generate(["q"])
    assert server.requests[0][2] == "Bearer sk-wrong"


def test_a_remote_endpoint_needs_the_key(monkeypatch):
    monkeypatch.delenv("MY_KEY", raising=False)
    with pytest.raises(R1kitError, match="MY_KEY is not set"):
        load_teacher("openai:gpt-4o-mini", base_url="https://api.example.com/v1", api_key_env="MY_KEY")
    with pytest.raises(R1kitError, match="mode"):
        load_teacher("openai:m", base_url="http://localhost:1/v1", mode="edits")
    assert is_local("http://localhost:11434/v1") and is_local("http://[::1]:8000/v1") and is_local("http://10.0.0.5/v1")
    assert not is_local("https://api.openai.com/v1")

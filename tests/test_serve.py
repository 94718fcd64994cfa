"""`r1kit serve`: the real server on loopback, a tiny model, the official openai client."""

from __future__ import annotations

import http.client
import json
import sys
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import pytest

openai = pytest.importorskip("openai")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from r1kit.cli import main
from r1kit.models import build_char_tokenizer, build_tiny_model, save_model
from r1kit.serve import MAX_BODY_BYTES, Message, ServedModel, running

LIMIT = 12  # --max-new-tokens-limit: keeps every generation short


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    tokenizer = build_char_tokenizer()
    out = tmp_path_factory.mktemp("serve") / "tiny"
    save_model(build_tiny_model("tiny-1m", tokenizer), tokenizer, out, prompt_info={"style": "compact", "chat": False})
    return out


@pytest.fixture(scope="module")
def url(model_dir):
    with running(ServedModel.load(str(model_dir), name="tiny", max_tokens_limit=LIMIT)) as base_url:
        yield base_url


@pytest.fixture(scope="module")
def client(url):
    return openai.OpenAI(base_url=url, api_key="EMPTY", max_retries=0, timeout=60)


def post(url: str, path: str, body: bytes, content_type: str = "application/json") -> tuple[int, dict]:
    request = urllib.request.Request(url + path, data=body, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def chat(client, content="12+3", **options):
    return client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": content}], **options)


def test_models_and_health(client, url):
    assert [m.id for m in client.models.list()] == ["tiny"]
    with urllib.request.urlopen(url.removesuffix("/v1") + "/health", timeout=10) as response:
        assert json.loads(response.read()) == {"status": "ok"}


def test_chat_completion_has_text_and_usage(client):
    response = chat(client, max_tokens=5, temperature=0)
    assert response.object == "chat.completion" and response.model == "tiny" and response.id.startswith("chatcmpl-")
    choice = response.choices[0]
    assert choice.index == 0 and choice.message.role == "assistant" and isinstance(choice.message.content, str)
    assert choice.finish_reason in ("stop", "length")
    usage = response.usage
    assert usage.prompt_tokens == len("12+3")  # a model trained without chat reads the raw user message
    assert 1 <= usage.completion_tokens <= 5 and usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_completion_with_prompt_list_and_n(client):
    response = client.completions.create(model="tiny", prompt=["1+2", "3*4"], n=3, max_tokens=4, seed=1)
    assert response.object == "text_completion"
    assert [c.index for c in response.choices] == list(range(6))
    assert all(isinstance(c.text, str) and c.finish_reason in ("stop", "length") for c in response.choices)
    assert response.usage.prompt_tokens == 6 and 6 <= response.usage.completion_tokens <= 24


def test_n_choices_and_seeded_sampling(client):
    first = chat(client, n=3, max_tokens=6, temperature=1.0, seed=7)
    assert len(first.choices) == 3
    again = chat(client, n=3, max_tokens=6, temperature=1.0, seed=7)
    assert [c.message.content for c in again.choices] == [c.message.content for c in first.choices]


def test_temperature_zero_is_deterministic(client):
    texts = {chat(client, max_tokens=8, temperature=0).choices[0].message.content for _ in range(2)}
    assert len(texts) == 1
    assert len({c.message.content for c in chat(client, n=2, max_tokens=8, temperature=0).choices}) == 1


def test_max_tokens_over_the_limit_is_capped(client):
    response = chat(client, max_tokens=100_000, temperature=0)
    assert response.usage.completion_tokens <= LIMIT
    assert chat(client, max_completion_tokens=3, temperature=0).usage.completion_tokens <= 3


def test_stop_string_cuts_the_text(client):
    text = client.completions.create(model="tiny", prompt="7-2", max_tokens=LIMIT, temperature=0).choices[0].text
    stop = text[-1]  # a character the greedy completion writes (late, for this seed's weights)
    cut = client.completions.create(model="tiny", prompt="7-2", max_tokens=LIMIT, temperature=0, stop=[stop])
    assert cut.choices[0].text == text[:text.index(stop)] and cut.choices[0].finish_reason == "stop"


def test_streaming_joins_to_the_greedy_text(client):
    expected = chat(client, max_tokens=10, temperature=0).choices[0].message.content
    chunks = list(chat(client, max_tokens=10, temperature=0, stream=True, stream_options={"include_usage": True}))
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == expected
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] in ("stop", "length")
    assert chunks[-1].usage.prompt_tokens == 4

    plain = client.completions.create(model="tiny", prompt="7-2", max_tokens=10, temperature=0).choices[0].text
    stop = plain[-2:]  # two characters: the stream must hold back a possible start of it
    streamed = client.completions.create(model="tiny", prompt="7-2", max_tokens=10, temperature=0, stream=True)
    assert "".join(c.choices[0].text for c in streamed) == plain
    streamed = client.completions.create(model="tiny", prompt="7-2", max_tokens=10, temperature=0, stream=True,
                                         stop=stop)
    assert "".join(c.choices[0].text for c in streamed) == plain[:plain.index(stop)]


def test_unknown_model_is_404(client):
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="gpt-nope", messages=[{"role": "user", "content": "1"}])
    assert caught.value.code == "model_not_found" and "tiny" in caught.value.message


@pytest.mark.parametrize("body, param", [
    (b"{not json", None),
    (b"[1, 2]", None),
    (json.dumps({"model": "tiny"}).encode(), "messages"),
    (json.dumps({"model": "tiny", "messages": []}).encode(), "messages"),
    (json.dumps({"model": "tiny", "messages": [{"role": "user", "content": "1"}], "n": 1000}).encode(), "n"),
    (json.dumps({"model": "tiny", "messages": [{"role": "user", "content": "1"}], "temperature": -1}).encode(),
     "temperature"),
    (json.dumps({"model": "tiny", "messages": [{"role": "system", "content": "1"}]}).encode(), "messages"),
    (json.dumps({"model": "tiny", "messages": [{"role": "user", "content": "1"}], "stop": ["a"] * 9}).encode(),
     "stop"),
    (json.dumps({"model": "tiny", "messages": [{"role": "user", "content": "1"}], "stream": True, "n": 2}).encode(),
     "stream"),
    (json.dumps({"model": "tiny", "messages": [{"role": "user", "content": "1" * 600}]}).encode(), "messages"),
])
def test_bad_requests_get_openai_error_json(url, body, param):
    status, answer = post(url, "/chat/completions", body)
    assert status == 400
    assert set(answer["error"]) == {"message", "type", "param", "code"} and answer["error"]["message"]
    assert answer["error"]["type"] == "invalid_request_error" and answer["error"]["param"] == param


def test_bad_completion_requests(url):
    status, answer = post(url, "/completions", json.dumps({"model": "tiny", "prompt": []}).encode())
    assert status == 400 and answer["error"]["param"] == "prompt"
    status, answer = post(url, "/completions", json.dumps({"model": "tiny", "prompt": ["1"] * 40, "n": 2}).encode())
    assert status == 400 and answer["error"]["param"] == "n"


def test_oversized_body_and_unknown_route(url):
    # declare an oversized body and send none: the server must answer before reading it
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    connection.putrequest("POST", "/v1/chat/completions")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(MAX_BODY_BYTES + 1))
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 413 and json.loads(response.read())["error"]["code"] == "request_too_large"
    connection.close()
    status, answer = post(url, "/nowhere", b"{}")
    assert status == 404 and "error" in answer


def test_chat_models_get_the_template(model_dir):
    served = ServedModel.load(str(model_dir), name="t")
    messages = [Message(role="user", content="1+1"), Message(role="assistant", content="2"),
                Message(role="user", content=[{"type": "text", "text": "2+2"}])]
    assert served.chat_prompt(messages) == "2+2"  # trained without chat: the last user message, raw
    served.chat = True
    assert served.chat_prompt(messages) == "user: 1+1\nassistant: 2<|eos|>user: 2+2\nassistant: "


@pytest.mark.parametrize("native", [True, False])
def test_served_in_the_dtype_evaluation_loads(model_dir, native, monkeypatch):
    import torch

    from r1kit import precision
    from r1kit.engines import load_for_inference

    monkeypatch.setattr(precision, "cpu_bf16_supported", lambda: native)
    monkeypatch.setattr(precision, "CPU_BF16_MIN_PARAMETERS", 1)  # the tiny model counts as large: bf16 where native
    served = ServedModel.load(str(model_dir), name="t").model
    assert served.dtype == load_for_inference(str(model_dir))[0].dtype == (torch.bfloat16 if native else torch.float32)


def test_cli_errors_are_one_line(tmp_path, capsys, monkeypatch):
    assert main(["serve", "--model", str(tmp_path / "missing")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "does not exist" in err
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # as if uvicorn were not installed
    assert main(["serve", "--model", str(tmp_path / "missing")]) == 1
    assert "pip install 'r1kit[serve]'" in capsys.readouterr().err


@pytest.mark.parametrize("path, body, param", [
    ("/completions", {"model": "tiny", "prompt": ""}, "prompt"),
    ("/completions", {"model": "tiny", "prompt": ["1", ""]}, "prompt"),
    ("/chat/completions", {"model": "tiny", "messages": [{"role": "user", "content": ""}]}, "messages"),
    ("/completions", {"model": "tiny", "prompt": "\ud800"}, "prompt"),
    ("/chat/completions", {"model": "tiny", "messages": [{"role": "user", "content": "1+\udfff"}]}, "messages"),
    ("/completions", {"model": "tiny", "prompt": "1", "stop": ["\ud800"]}, "stop"),
    ("/completions", {"model": "\ud800", "prompt": "1"}, "model"),
    ("/completions", {"model": "tiny", "prompt": "1", "seed": 2**70}, "seed"),
    ("/chat/completions", {"model": "tiny", "messages": [{"role": "user", "content": "1"}], "seed": -(2**64)}, "seed"),
])
def test_client_mistakes_are_400s_not_500s(url, path, body, param):
    status, answer = post(url, path, json.dumps(body).encode())  # json.dumps writes "\ud800" as an escape
    assert status == 400, answer
    assert set(answer["error"]) == {"message", "type", "param", "code"} and answer["error"]["message"]
    assert answer["error"]["type"] == "invalid_request_error" and answer["error"]["param"] == param


def test_any_int64_seed_is_served(client):
    for seed in (2**63 - 1, -(2**63)):
        assert chat(client, max_tokens=2, seed=seed).choices[0].finish_reason in ("stop", "length")


def test_a_dropped_stream_stops_its_generation(model_dir):
    """A client that disconnects mid-stream must not keep the model (and its lock) busy."""
    import time

    served = ServedModel.load(str(model_dir), name="tiny", max_tokens_limit=100_000)  # capped by the context
    body = {"model": "tiny", "prompt": "1+2", "max_tokens": 100_000, "temperature": 0}
    with running(served) as base_url:
        parts = urlsplit(base_url)

        def request(extra):
            connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
            connection.request("POST", "/v1/completions", json.dumps(body | extra), {"Content-Type": "application/json"})
            return connection, connection.getresponse()

        start = time.perf_counter()
        _, response = request({})
        full = json.loads(response.read())
        whole = time.perf_counter() - start  # what a stream nobody stops would hold the lock for
        assert full["choices"][0]["finish_reason"] == "length" and full["usage"]["completion_tokens"] > 100

        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        chat_body = {key: value for key, value in body.items() if key != "prompt"}
        connection.request("POST", "/v1/chat/completions", json.dumps(chat_body | {
            "stream": True, "messages": [{"role": "user", "content": "1+2"}]}), {"Content-Type": "application/json"})
        response = connection.getresponse()
        assert response.status == 200 and response.fp.readline()  # the role event is out: generation runs
        response.close()  # the client goes away (the socket closes with its last user)
        connection.close()
        start = time.perf_counter()
        _, response = request({"max_tokens": 1})
        assert response.status == 200 and json.loads(response.read())["usage"]["completion_tokens"] == 1
        assert time.perf_counter() - start < whole / 3, whole  # it did not wait for the dropped generation
        deadline = time.monotonic() + 5
        while served.lock.locked() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not served.lock.locked()

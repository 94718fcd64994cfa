# Kept over `transformers serve`: it ignores `n`, takes one prompt, garbles the char tokenizer, answers non-OpenAI errors, bounds no body.
"""An OpenAI-compatible HTTP server for one r1kit or Hugging Face causal LM.

    r1kit serve --model runs/quickstart/stages/grpo/model --port 8000
    client = openai.OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="EMPTY")

Endpoints: GET /v1/models, POST /v1/chat/completions, POST /v1/completions, GET /health.
Loading and generation are `r1kit.engines`' (as in evaluation); one model answers one request at a
time (a lock), and every request is bounded: body size, n, max_tokens, prompt length in tokens.
max_tokens above the server's limit (or the context left after the prompt) is capped, not refused.
"""

from __future__ import annotations

import json
import queue
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from r1kit.errors import R1kitError

MAX_BODY_BYTES = 1 << 20  # 1 MiB of JSON is far more than any prompt a small model reads
MAX_N = 16  # completions per prompt
MAX_SEQUENCES = 64  # prompts x n in one request
MAX_STOP = 4  # stop strings, as OpenAI allows
MAX_STOP_CHARS = 64
PIECE_WAIT_S = 0.2  # how soon a stream whose client left is noticed, at the latest


class APIError(Exception):
    """An error answered as OpenAI's error JSON."""

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None,
                 kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.kind = status, message, param, code, kind

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}


# ---------------------------------------------------------------- requests (OpenAI's fields; others ignored)


class Sampling(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str | None = None  # None: the one model served
    n: int | None = Field(None, ge=1, le=MAX_N)
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    seed: int | None = Field(None, ge=-(2**63), lt=2**63)  # int64, as OpenAI's; torch takes any of them
    stop: str | list[str] | None = None
    stream: bool | None = False
    stream_options: dict[str, Any] | None = None

    def stops(self) -> tuple[str, ...]:
        stops = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        if len(stops) > MAX_STOP or any(not s or len(s) > MAX_STOP_CHARS for s in stops):
            raise APIError(400, f"stop: up to {MAX_STOP} non-empty strings of at most {MAX_STOP_CHARS} characters",
                           param="stop")
        for text in stops:
            check_text(text, "stop")
        return tuple(stops)


def check_text(text: str, param: str) -> None:
    """JSON can carry a lone surrogate ("\\ud800"), which no tokenizer (nor our JSON reply) can
    encode: the client's mistake, so a 400, not a crash."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise APIError(400, f"{param}: holds a lone surrogate (\\u{ord(text[error.start]):04x} at character "
                            f"{error.start}), which is not text; send valid UTF-16 pairs", param=param) from None


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: str
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):  # content parts: only text parts carry meaning here
            return "".join(str(part.get("text", "")) for part in self.content if part.get("type") == "text")
        return self.content or ""


class ChatRequest(Sampling):
    messages: list[Message] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)


class CompletionRequest(Sampling):
    prompt: str | list[str]


# ---------------------------------------------------------------- the served model


@dataclass
class Choice:
    text: str
    tokens: int
    finish_reason: Literal["stop", "length"]


@dataclass
class ServedModel:
    """One loaded model, how it is prompted, and the limits it is served under."""

    model: Any
    tokenizer: Any
    name: str
    chat: bool  # prompts go through the chat template (else: the last user message, raw)
    max_tokens_limit: int = 2048
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def load(cls, model: str, *, name: str | None = None, max_tokens_limit: int = 2048) -> ServedModel:
        from r1kit.engines import load_for_inference
        from r1kit.prompting import prompt_format

        if max_tokens_limit < 1:
            raise R1kitError("--max-new-tokens-limit must be at least 1")
        loaded, tokenizer = load_for_inference(model)
        chat = prompt_format(model, tokenizer).chat
        return cls(loaded, tokenizer, name or model, chat, max_tokens_limit)

    @property
    def max_positions(self) -> int | None:
        config = self.model.config
        return getattr(config.get_text_config() if hasattr(config, "get_text_config") else config,
                       "max_position_embeddings", None)

    def chat_prompt(self, messages: list[Message]) -> str:
        if not self.chat:  # a model trained on raw prompts (r1kit compact style) reads the question alone
            users = [m.text() for m in messages if m.role == "user"]
            if not users:
                raise APIError(400, "messages: this model reads the last user message; send one", param="messages")
            return users[-1]
        try:
            return self.tokenizer.apply_chat_template([{"role": m.role, "content": m.text()} for m in messages],
                                                      tokenize=False, add_generation_prompt=True)
        except Exception as error:  # noqa: BLE001 (jinja raises on roles or orders a template does not accept)
            raise APIError(400, f"messages: the model's chat template refused them ({error})", param="messages")

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def budget(self, prompt_tokens: int, requested: int | None, param: str) -> int:
        """max_tokens for this request: capped at the server limit and at the context left."""
        limit = min(requested or self.max_tokens_limit, self.max_tokens_limit)
        if self.max_positions is not None:
            if prompt_tokens >= self.max_positions:
                raise APIError(400, f"the prompt is {prompt_tokens} tokens; this model reads at most "
                                    f"{self.max_positions - 1} plus what it writes", param=param,
                               code="context_length_exceeded")
            limit = min(limit, self.max_positions - prompt_tokens)
        return limit

    def complete(self, prompts: list[str], *, n: int, max_tokens: int, temperature: float, top_p: float,
                 seed: int | None, stop: tuple[str, ...], streamer: Any = None) -> list[list[Choice]]:
        """n choices per prompt; one generation at a time, whoever asks."""
        import torch

        from r1kit.engines import GenerationSettings, generate_texts

        settings = GenerationSettings(max_new_tokens=max_tokens, batch_size=MAX_SEQUENCES, temperature=temperature,
                                      top_p=top_p, stop=stop, keep_stop=False)  # OpenAI leaves the stop string out
        lengths: list[tuple[int, bool]] = []
        with self.lock:
            if seed is not None:
                torch.manual_seed(seed)
            texts = generate_texts(self.model, self.tokenizer, prompts, samples=n, greedy=temperature == 0,
                                   settings=settings, streamer=streamer, lengths=lengths)
        ends = iter(lengths)
        return [[Choice(text, tokens, "stop" if stopped else "length") for text, (tokens, stopped) in zip(row, ends)]
                for row in texts]


# ---------------------------------------------------------------- the app


def create_app(served: ServedModel):
    """The FastAPI app serving `served` (routes are sync: FastAPI runs them in its thread pool)."""
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, StreamingResponse
    from starlette.exceptions import HTTPException

    app = FastAPI(title="r1kit serve", max_body_size=MAX_BODY_BYTES, docs_url=None, redoc_url=None)

    @app.exception_handler(APIError)
    def api_error(_: Request, error: APIError):
        return JSONResponse(error.body(), status_code=error.status)

    @app.exception_handler(RequestValidationError)
    def invalid(_: Request, error: RequestValidationError):
        first = error.errors()[0]
        if first.get("type") == "json_invalid":
            return api_error(_, APIError(400, f"the request body is not valid JSON ({first.get('ctx', {}).get('error')})"))
        param = ".".join(str(part) for part in first.get("loc", ())[1:]) or None
        if param is None:
            return api_error(_, APIError(400, "the request body must be a JSON object "
                                              "(send it with Content-Type: application/json)"))
        return api_error(_, APIError(400, f"{param or 'body'}: {first.get('msg')}", param=param))

    @app.exception_handler(HTTPException)
    def http_error(_: Request, error: HTTPException):
        code = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}.get(error.status_code)
        return api_error(_, APIError(error.status_code, str(error.detail), code=code))

    @app.exception_handler(Exception)
    def crashed(_: Request, error: Exception):  # uvicorn still logs the traceback
        return api_error(_, APIError(500, f"the server failed: {type(error).__name__}: {error}", kind="server_error"))

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": served.name, "object": "model", "created": 0, "owned_by": "r1kit"}]}

    @app.post("/v1/chat/completions")
    def chat_completions(request: ChatRequest):
        _check_model(served, request.model)
        prompt = served.chat_prompt(request.messages)
        max_tokens = request.max_completion_tokens or request.max_tokens
        return _answer(served, request, [prompt], max_tokens, chat=True)

    @app.post("/v1/completions")
    def completions(request: CompletionRequest):
        _check_model(served, request.model)
        prompts = [request.prompt] if isinstance(request.prompt, str) else request.prompt
        if not prompts:
            raise APIError(400, "prompt: send a string or a non-empty list of strings", param="prompt")
        return _answer(served, request, prompts, request.max_tokens, chat=False)

    def _answer(served: ServedModel, request: Sampling, prompts: list[str], max_tokens: int | None, *, chat: bool):
        n = request.n or 1
        param = "messages" if chat else "prompt"
        for prompt in prompts:
            check_text(prompt, param)
            if not prompt:  # the model would be asked to continue nothing (and generate() fails on it)
                raise APIError(400, f"{param}: the prompt is empty; send some text", param=param)
        if len(prompts) * n > MAX_SEQUENCES:
            raise APIError(400, f"prompts x n is {len(prompts) * n}; at most {MAX_SEQUENCES} per request", param="n")
        prompt_tokens = [served.count_tokens(p) for p in prompts]
        options = {"n": n, "max_tokens": served.budget(max(prompt_tokens), max_tokens, param),
                   "temperature": 1.0 if request.temperature is None else request.temperature,
                   "top_p": request.top_p or 1.0, "seed": request.seed, "stop": request.stops()}
        head = {"id": f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex}", "created": int(time.time()),
                "model": served.name}
        if request.stream:
            if len(prompts) * n != 1:
                raise APIError(400, "stream: only one prompt with n=1 streams", param="stream")
            include_usage = bool((request.stream_options or {}).get("include_usage"))
            return StreamingResponse(_stream(served, prompts[0], prompt_tokens[0], options, head, chat, include_usage),
                                     media_type="text/event-stream")
        choices = [c for row in served.complete(prompts, **options) for c in row]
        body = [({"index": i, "message": {"role": "assistant", "content": c.text}} if chat else
                 {"index": i, "text": c.text}) | {"finish_reason": c.finish_reason, "logprobs": None}
                for i, c in enumerate(choices)]
        completion_tokens = sum(c.tokens for c in choices)
        return head | {"object": "chat.completion" if chat else "text_completion", "choices": body,
                       "usage": _usage(sum(prompt_tokens), completion_tokens)}

    return app


def _refuse_declared_oversize(app):
    """Answer a Content-Length over the limit with OpenAI's error JSON before anything reads the body.
    (FastAPI's own limit still counts chunked bodies, but answers a declared oversize in plain text.)"""
    from fastapi.responses import JSONResponse

    async def limited(scope, receive, send) -> None:
        if scope["type"] == "http":
            length = dict(scope["headers"]).get(b"content-length", b"")
            if length.isdigit() and int(length) > MAX_BODY_BYTES:
                error = APIError(413, f"the request body is over {MAX_BODY_BYTES} bytes", code="request_too_large")
                return await JSONResponse(error.body(), status_code=413)(scope, receive, send)
        await app(scope, receive, send)

    return limited


def _check_model(served: ServedModel, name: str | None) -> None:
    if name is not None:
        check_text(name, "model")
    if name is not None and name != served.name:
        raise APIError(404, f"the model '{name}' does not exist; this server has '{served.name}'", param="model",
                       code="model_not_found")


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


class StreamDropped(Exception):
    """Raised inside generate() to end the generation of a stream nobody reads any more."""


def _droppable_streamer(tokenizer, dropped: threading.Event):
    """A TextIteratorStreamer that ends its generation once `dropped` is set. generate() hands
    the streamer every new token, so this is the per-token hook that `generate_texts` exposes;
    raising from it stops the model within one token (and frees the lock for the next request)."""
    from transformers import TextIteratorStreamer

    class Streamer(TextIteratorStreamer):
        def put(self, value) -> None:
            if dropped.is_set():
                raise StreamDropped
            super().put(value)

    return Streamer(tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=PIECE_WAIT_S)


def _pieces(streamer) -> Iterator[str]:
    """The streamer's text, and "" after every PIECE_WAIT_S without any. The server can close a
    stream only while it is between pieces (not while a thread waits for the next), and the
    streamer holds text back until a word ends: without these, a dropped stream would be noticed
    only when the model wrote a space, or finished."""
    while True:
        try:
            yield next(streamer)
        except queue.Empty:
            yield ""
        except StopIteration:
            return


async def _stream(served: ServedModel, prompt: str, prompt_tokens: int, options: dict[str, Any],
                  head: dict[str, Any], chat: bool, include_usage: bool):
    """Server-sent events, made in a worker thread. A client that disconnects gets this cancelled
    by the server, which sets `dropped` here at once (closing the thread's generator would wait
    for the garbage collector), and the generation stops instead of running to max_tokens with
    the model's lock held."""
    from starlette.concurrency import iterate_in_threadpool

    dropped = threading.Event()
    events = _events(served, _droppable_streamer(served.tokenizer, dropped), prompt, prompt_tokens, options, head,
                     chat, include_usage)
    try:
        async for event in iterate_in_threadpool(events):
            if event:
                yield event
    finally:
        dropped.set()


def _events(served: ServedModel, streamer, prompt: str, prompt_tokens: int, options: dict[str, Any],
            head: dict[str, Any], chat: bool, include_usage: bool) -> Iterator[str]:
    """Text as the model writes it, holding back what could begin a stop string; "" while there
    is none (the moments at which a cancelled stream can stop, see `_stream`)."""
    result: dict[str, Any] = {}

    def work() -> None:
        try:
            result["choice"] = served.complete([prompt], streamer=streamer, **options)[0][0]
        except StreamDropped:
            pass  # nobody is reading
        except Exception as error:  # noqa: BLE001 (reported in the stream: the 200 header is already out)
            result["error"] = error
            streamer.end()

    def event(delta: str | None, finish: str | None = None) -> str:
        if chat:
            choice = {"index": 0, "delta": {} if delta is None else {"content": delta}, "finish_reason": finish}
        else:
            choice = {"index": 0, "text": delta or "", "finish_reason": finish}
        kind = "chat.completion.chunk" if chat else "text_completion"
        return f"data: {json.dumps(head | {'object': kind, 'choices': [choice]})}\n\n"

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    if chat:
        yield f"data: {json.dumps(head | {'object': 'chat.completion.chunk', 'choices': [{'index': 0, 'delta': {'role': 'assistant', 'content': ''}, 'finish_reason': None}]})}\n\n"
    from r1kit.engines import stop_at

    stop, hold = options["stop"], max((len(s) for s in options["stop"]), default=1) - 1
    text, sent = "", 0
    for piece in _pieces(streamer):
        if not piece:
            yield ""  # nothing new: a moment at which a cancelled stream can stop (see _stream)
            continue
        text += piece
        cut = stop_at(text, stop, keep=False)
        safe = cut if cut is not None else len(text) - hold
        if safe > sent:
            yield event(text[sent:safe])
            sent = safe
        if cut is not None:
            for _ in _pieces(streamer):  # let the generation end: its result has the finish reason and token count
                pass
            break
    thread.join()
    if "error" in result:
        yield f"data: {json.dumps({'error': {'message': str(result['error']), 'type': 'server_error', 'param': None, 'code': None}})}\n\n"
        return
    choice: Choice = result["choice"]
    if len(choice.text) > sent:
        yield event(choice.text[sent:])
    yield event(None, choice.finish_reason)
    if include_usage:
        yield f"data: {json.dumps(head | {'object': 'chat.completion.chunk' if chat else 'text_completion', 'choices': [], 'usage': _usage(prompt_tokens, choice.tokens)})}\n\n"
    yield "data: [DONE]\n\n"


# ---------------------------------------------------------------- running it


def _need_server_libraries() -> None:
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise R1kitError("r1kit serve needs FastAPI and uvicorn: pip install 'r1kit[serve]'") from None


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family)
    except OSError as error:
        raise R1kitError(f"cannot listen on {host}:{port} ({error.strerror or error}); pick another --port or --host") from None


def _uvicorn_server(served: ServedModel):
    import uvicorn

    config = uvicorn.Config(_refuse_declared_oversize(create_app(served)), log_level="warning", access_log=False, lifespan="off",
                            timeout_graceful_shutdown=5)
    return uvicorn.Server(config)


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/v1"


def serve(model: str, *, host: str = "127.0.0.1", port: int = 8000, name: str | None = None,
          max_tokens_limit: int = 2048, announce=print) -> None:
    """Load `model` and serve it until Ctrl-C; `announce` gets one line with the URL when ready."""
    _need_server_libraries()
    served = ServedModel.load(model, name=name, max_tokens_limit=max_tokens_limit)
    sock = _listen(host, port)
    server = _uvicorn_server(served)
    # uvicorn sets `started` once it accepts connections; announce from a watcher so the line means "ready"
    threading.Thread(target=_announce_when_started, args=(server, served, sock, announce), daemon=True).start()
    try:
        server.run(sockets=[sock])  # handles Ctrl-C: stops accepting, finishes requests, then re-raises it
    finally:
        sock.close()


def _announce_when_started(server, served: ServedModel, sock: socket.socket, announce) -> None:
    while not server.started and not server.should_exit:
        time.sleep(0.05)
    if server.started:
        announce(f"serving '{served.name}' at {url_of(sock)} (OpenAI-compatible; Ctrl-C stops)")


@contextmanager
def running(served: ServedModel, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve in a background thread for the `with` block; yields the base URL (port 0: a free one)."""
    _need_server_libraries()
    sock = _listen(host, port)
    server = _uvicorn_server(served)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise R1kitError(f"the server on {url_of(sock)} stopped while starting")
            time.sleep(0.02)
        yield url_of(sock)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()

"""A teacher behind any OpenAI-compatible endpoint: OpenAI, vLLM, Ollama, `r1kit serve`, hosted APIs.

    teacher = OpenAITeacher("Qwen/Qwen2.5-7B-Instruct", base_url="http://localhost:8000/v1")   # vllm serve
    teacher = OpenAITeacher("qwen2.5:7b", base_url="http://localhost:11434/v1")                 # ollama serve
    teacher = OpenAITeacher("gpt-4o-mini")                                   # OPENAI_API_KEY, api.openai.com

Retries are the `openai` client's own: up to `max_retries` on connection errors, timeouts, 408, 409,
429 and 5xx, waiting 0.5 s x 2^attempt (at most 8 s) less up to 25% jitter, or what Retry-After asks.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from urllib.parse import urlsplit

import openai

from r1kit.errors import R1kitError

DEFAULT_BASE_URL = "https://api.openai.com/v1"
MAX_COMPLETION_CHARS = 100_000  # a teacher's text is untrusted: bound what we keep
MODES = ("chat", "completions")


def is_local(base_url: str) -> bool:
    """Loopback or private-network hosts: servers there (vLLM, Ollama, r1kit serve) need no key."""
    host = urlsplit(base_url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_private or address.is_unspecified


class OpenAITeacher:
    """`Teacher` over the chat or completions API; prompts run `concurrency` at a time."""

    def __init__(self, model: str, *, base_url: str | None = None, api_key_env: str = "OPENAI_API_KEY",
                 mode: str = "chat", style: str = "think", concurrency: int = 8, timeout: float = 60.0,
                 max_retries: int = 5, system_prompt: str | None = None,
                 max_chars: int = MAX_COMPLETION_CHARS) -> None:
        if mode not in MODES:
            raise R1kitError(f"teacher mode {mode!r}: use chat or completions")
        if concurrency < 1 or max_retries < 0 or timeout <= 0:
            raise R1kitError("teacher: concurrency >= 1, max_retries >= 0 and timeout > 0 are needed")
        self.model, self.mode, self.style = model, mode, style
        self.name = f"openai:{model}"
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        self.api_key_env, self.timeout, self.max_retries = api_key_env, timeout, max_retries
        self.concurrency, self.system_prompt, self.max_chars = concurrency, system_prompt, max_chars
        key = os.environ.get(api_key_env)
        if not key:
            if not is_local(self.base_url):
                raise R1kitError(f"{api_key_env} is not set: export {api_key_env}=<your key for {self.base_url}> "
                                 f"(or name another variable with api_key_env)")
            key = "EMPTY"  # local servers ignore it, but the client wants one
        self.client = openai.OpenAI(base_url=self.base_url, api_key=key, timeout=timeout, max_retries=max_retries)
        self._tokens_field = "max_tokens"  # OpenAI's reasoning models want max_completion_tokens instead
        self._reached = False  # see check_reachable

    def generate(self, prompts: list[str], *, n: int = 1, max_tokens: int = 256, temperature: float = 1.0,
                 seed: int = 0, progress: Callable[[int], None] | None = None) -> list[list[str]]:
        """`n` completions per prompt, in prompt order; `progress(1)` as each prompt is done."""
        self.check_reachable()
        results: list[list[str]] = [[] for _ in prompts]
        pool = ThreadPoolExecutor(max_workers=min(self.concurrency, max(1, len(prompts))))
        try:
            futures = {pool.submit(self._complete, prompt, n, max_tokens, temperature, seed): i
                       for i, prompt in enumerate(prompts)}
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                if progress is not None:
                    progress(1)
        finally:  # on the first error, requests not yet started are dropped
            pool.shutdown(wait=False, cancel_futures=True)
        return results

    def check_reachable(self) -> None:
        """A local server that is not running refuses the connection: say so at once, instead of
        after the client's retries (~15 s by default) for every prompt. One TCP connect, once;
        remote endpoints (which a proxy may carry) are left to the client and its retries."""
        if self._reached or not is_local(self.base_url):
            return
        parts = urlsplit(self.base_url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            socket.create_connection((parts.hostname, port), timeout=min(self.timeout, 5.0)).close()
        except OSError as error:
            raise R1kitError(f"cannot reach {self.base_url} ({error.strerror or error}): is the server running? "
                             f"e.g. `r1kit serve --model DIR`, `vllm serve MODEL`, `ollama serve`") from None
        self._reached = True

    def _complete(self, prompt: str, n: int, max_tokens: int, temperature: float, seed: int) -> list[str]:
        texts = self._request(prompt, n, max_tokens, temperature, seed)
        while len(texts) < n:  # servers that ignore n (Ollama) answer one choice: ask again, one at a time
            more = self._request(prompt, 1, max_tokens, temperature, seed + len(texts))
            if not more:
                raise R1kitError(f"{self.base_url} answered no choices for model '{self.model}'")
            texts += more
        return texts[:n]

    def _request(self, prompt: str, n: int, max_tokens: int, temperature: float, seed: int) -> list[str]:
        options = {"model": self.model, "n": n, "temperature": temperature, "seed": seed}
        try:
            if self.mode == "completions":
                response = self.client.completions.create(prompt=prompt, max_tokens=max_tokens, **options)
                texts = [c.text for c in sorted(response.choices, key=lambda c: c.index)]
            else:
                response = self.client.chat.completions.create(messages=self._messages(prompt),
                                                               **{self._tokens_field: max_tokens}, **options)
                texts = [c.message.content for c in sorted(response.choices, key=lambda c: c.index)]
        except openai.BadRequestError as error:
            if self._tokens_field == "max_tokens" and self.mode == "chat" and "max_completion_tokens" in str(error):
                self._tokens_field = "max_completion_tokens"
                return self._request(prompt, n, max_tokens, temperature, seed)
            raise self._explain(error) from None
        except openai.OpenAIError as error:
            raise self._explain(error) from None
        return [(text or "")[:self.max_chars] for text in texts]

    def _messages(self, prompt: str) -> list[dict[str, str]]:
        system = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        return system + [{"role": "user", "content": prompt}]

    def _explain(self, error: openai.OpenAIError) -> R1kitError:
        """One clear message for what went wrong, after the client's retries."""
        retried = f"after {self.max_retries} retries" if self.max_retries else "without retries"
        if isinstance(error, openai.APITimeoutError):
            return R1kitError(f"{self.base_url} did not answer within {self.timeout:g} s ({retried}): "
                              f"is the server overloaded? raise the teacher's timeout")
        if isinstance(error, openai.APIConnectionError):
            return R1kitError(f"cannot reach {self.base_url} ({retried}): is the server running? e.g. "
                              f"`r1kit serve --model DIR`, `vllm serve MODEL`, `ollama serve`")
        if isinstance(error, (openai.AuthenticationError, openai.PermissionDeniedError)):
            return R1kitError(f"{self.base_url} refused the API key ({_message(error)}): "
                              f"set {self.api_key_env} to a valid key")
        if isinstance(error, openai.NotFoundError):
            return R1kitError(self._not_found(error))
        if isinstance(error, openai.APIStatusError):
            return R1kitError(f"{self.base_url} answered {error.status_code} ({retried}): {_message(error)}")
        return R1kitError(f"{self.base_url}: {_message(error)}")

    def _not_found(self, error: openai.NotFoundError) -> str:
        try:
            served = sorted(m.id for m in self.client.with_options(max_retries=0).models.list())
        except openai.OpenAIError:
            return (f"{self.base_url} answered 404 ({_message(error)}): check the model name '{self.model}' "
                    f"and the base URL (it usually ends in /v1)")
        if self.model not in served:
            listed = ", ".join(served[:20]) + (", ..." if len(served) > 20 else "") or "none"
            return f"model '{self.model}' is not served at {self.base_url}; it has: {listed}"
        return f"{self.base_url} has no {self.mode} endpoint for '{self.model}' ({_message(error)}): try the other mode"


def _message(error: openai.OpenAIError) -> str:
    body = getattr(error, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        text = inner.get("message") if isinstance(inner, dict) else None
        if text:
            return str(text)[:300]
    return (str(error).splitlines() or [type(error).__name__])[0][:300]

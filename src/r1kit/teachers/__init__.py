"""Teachers: anything that writes completions for prompts. Their traces are kept only if verified.

    teacher = load_teacher("local:runs/ablation/stages/teacher/model")      # an HF model directory or hub id
    teacher = load_teacher("openai:Qwen/Qwen2.5-7B-Instruct", base_url="http://localhost:8000/v1")
    texts = teacher.generate(["What is 2+3?"], n=4, max_tokens=256, temperature=0.8)   # list[list[str]]

Every backend takes the *user message text* of each prompt: chat backends send it as one user
message (through the model's chat template), completion backends send it as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, runtime_checkable

from r1kit.errors import R1kitError


@runtime_checkable
class Teacher(Protocol):
    name: str  # shown in reports, e.g. "local:runs/x/model" or "openai:gpt-4o-mini"
    style: str  # the trace style its prompts ask for (r1kit.render styles; "think" for chat LLMs)

    def generate(self, prompts: list[str], *, n: int = 1, max_tokens: int = 256, temperature: float = 1.0,
                 seed: int = 0, progress: Callable[[int], None] | None = None) -> list[list[str]]:
        """`n` completions per prompt, in prompt order; `progress(k)` after k more prompts are done."""
        ...


BACKENDS = ("local", "openai")


@dataclass(frozen=True)
class TeacherSpec:
    """A teacher as written: `local:PATH_OR_HUB_ID`, `openai:MODEL_NAME`, a path (a local model),
    or in a recipe the name of an earlier stage (backend "stage"), whose model it is."""

    backend: str  # local | openai | stage
    target: str  # a path or hub id, a model name, or a stage name
    text: str = field(default="", compare=False)  # as written, so a recipe's dump (and stage hash) keeps it

    @classmethod
    def parse(cls, text: str) -> TeacherSpec:
        backend, sep, target = text.partition(":")
        if not sep:
            return cls("local" if "/" in text else "stage", text, text)
        if backend not in BACKENDS or not target:
            raise R1kitError(f"teacher {text!r}: use local:PATH_OR_HUB_ID or openai:MODEL_NAME")
        return cls(backend, target, text)


def load_teacher(spec: str | TeacherSpec, **options: Any) -> Teacher:
    """`local:PATH_OR_HUB_ID` or `openai:MODEL_NAME` (options: base_url, api_key_env, mode, ...)."""
    spec = spec if isinstance(spec, TeacherSpec) else TeacherSpec.parse(spec)
    if spec.backend == "local":
        from r1kit.teachers.local import LocalTeacher

        return LocalTeacher(spec.target, **options)
    if spec.backend == "openai":
        from r1kit.teachers.openai_compat import OpenAITeacher

        return OpenAITeacher(spec.target, **options)
    raise R1kitError(f"teacher {spec.text!r}: use local:PATH_OR_HUB_ID or openai:MODEL_NAME")

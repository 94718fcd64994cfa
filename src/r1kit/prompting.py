"""How a model is asked: the trace style its prompts request, and whether they go through its
chat template. The one place that decides it, for training stages, evaluation, teachers and the
server, and the one reader and writer of `r1kit.json`, where r1kit saves both beside every model it writes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from r1kit.problem import Problem
from r1kit.render import Phrasing, check_style, prompt_text

DEFAULT_STYLE = "think"  # for a model r1kit did not train: instructions a chat LLM can follow
PROMPT_INFO_FILE = "r1kit.json"


@dataclass
class PromptFormat:
    style: str = DEFAULT_STYLE
    chat: bool = True

    def prompt(self, problem: Problem, tokenizer, task: Phrasing) -> str:
        return self.wrap(prompt_text(problem, self.style, task), tokenizer)

    def wrap(self, text: str, tokenizer) -> str:
        if not self.chat:
            return text
        return tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                             add_generation_prompt=True)


def write_prompt_info(model_dir: str | Path, info: dict) -> None:
    """Save how to prompt the model in `model_dir` (its `style`, whether it is `chat`)."""
    (Path(model_dir) / PROMPT_INFO_FILE).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")


def read_prompt_info(model_dir: str | Path) -> dict | None:
    """What `write_prompt_info` saved, or None for a model r1kit did not write."""
    path = Path(model_dir) / PROMPT_INFO_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def _info(model: str | Path | None) -> dict:
    return (read_prompt_info(model) or {}) if model and Path(model).is_dir() else {}


def prompt_format(model: str | Path | None, tokenizer, *, style: str | None = None,
                  untrained: PromptFormat | None = None) -> PromptFormat:
    """How to ask `model` (a directory, a hub id or None): `style` if given, else the style it
    was trained on; chat as it was trained. A model r1kit did not train is asked as `untrained`
    says (a recipe: the way its stages ask), else in the default style, chat whenever its
    tokenizer has a chat template."""
    info = _info(model)
    untrained = untrained or PromptFormat(DEFAULT_STYLE, getattr(tokenizer, "chat_template", None) is not None)
    style = style or info.get("style") or untrained.style
    check_style(style)
    chat = bool(info["chat"]) if "chat" in info else untrained.chat
    return PromptFormat(style=style, chat=chat)


def trained_style(model: str | Path | None) -> str | None:
    """The trace style `model` was trained to write, for a stage that continues from it; None
    for an answer-only model (a pretrained base): it has no trace style to continue."""
    style = _info(model).get("style")
    return None if style == "answer" else style

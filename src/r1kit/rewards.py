"""TRL-compatible reward functions: `fn(completions, **columns) -> list[float]`.

Completions may be plain strings or conversations (`[{"role": "assistant", "content": …}]`).
Every judgement goes through `r1kit.verify`, so rewards, eval and teachers agree.
"""

from __future__ import annotations

import functools
import inspect
import json
import re
from collections.abc import Callable, Sequence
from typing import Any

from r1kit import tasks
from r1kit.errors import R1kitError, suggest
from r1kit.tasks.base import Task
from r1kit.verify import check_steps, extract_answer, extract_bare, extract_flexible, is_correct

RewardFn = Callable[..., list[float]]


def text_of(completion: Any) -> str:
    """The assistant text of a completion in any of TRL's shapes."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return str(completion.get("content") or "")
    if isinstance(completion, Sequence):
        parts = [m.get("content") or "" for m in completion if isinstance(m, dict) and m.get("role", "assistant") == "assistant"]
        return "".join(str(p) for p in parts)
    return ""


def _column(values: Any, index: int) -> Any:
    if values is None:
        return None
    return values[index] if isinstance(values, (list, tuple)) else values


def accuracy(task: Task | None = None, lenient: bool = False) -> RewardFn:
    """The accuracy reward (open-r1's factory style): 1.0 when the extracted answer is right, else
    0.0. Bound to `task`, its scorer judges every row; unbound, the task each row's `task` column
    names does (plain numeric equivalence without one). `lenient` reads the final number the text
    commits to wherever it is (eval's flexible extraction), not only the answer slot: for a base
    model that answers right in its own words (R1-Zero)."""
    bound, extract = task, extract_flexible if lenient else extract_answer

    def accuracy_reward(completions: list, answer: list[str], task: list[str] | None = None,
                        metadata: list | None = None, **kwargs) -> list[float]:
        named = functools.cache(tasks.get)  # each task looked up once per batch
        parsed = functools.cache(json.loads)  # a problem's metadata once, not once per completion of its group
        scores = []
        for i, completion in enumerate(completions):
            predicted, name, meta = extract(text_of(completion)), _column(task, i), _column(metadata, i)
            judge = bound or (named(name) if name else None)
            if judge is None:
                scores.append(float(is_correct(predicted, answer[i])))
            else:
                meta = parsed(meta) if isinstance(meta, str) and meta else meta
                scores.append(float(judge.score_answer(predicted, answer[i], meta)))
        return scores

    return accuracy_reward


accuracy_reward = accuracy()  # for a GRPOTrainer of your own: it reads each row's `task` column


_TAGS = ("<think>", "</think>", "<answer>", "</answer>")
_THINK_FORMAT = re.compile(r"\s*<think>(.+?)</think>\s*<answer>(.+?)</answer>\s*", re.DOTALL)


def format_reward(completions: list, **kwargs) -> list[float]:
    """1.0 for exactly one non-empty think block followed by one non-empty answer block, nothing after."""
    scores = []
    for completion in completions:
        text = text_of(completion)
        once = all(text.count(tag) == 1 for tag in _TAGS)
        match = once and _THINK_FORMAT.fullmatch(text)
        scores.append(1.0 if match and match.group(1).strip() and match.group(2).strip() else 0.0)
    return scores


def answered_reward(completions: list, **kwargs) -> list[float]:
    """1.0 when the completion states an answer in the slot its prompt asks for (`answer 17`,
    `<answer>…</answer>`, a box), right or wrong: a small format credit beside a lenient accuracy
    reward (TinyZero gives a well-formed wrong answer 0.1), so a base learns where to answer."""
    return [1.0 if (extract_answer(text_of(c)) or "").strip() else 0.0 for c in completions]


def bare_reward(completions: list, **kwargs) -> list[float]:
    """1.0 when the completion answers in one short line without words (`8`, `3 + 5 = 8`), right
    or wrong: what the strict reader of a `short` prompt reads (`verify.extract_bare`). A small
    format credit beside a lenient accuracy reward, as `answered` is for prompts with an answer slot."""
    return [1.0 if extract_bare(text_of(c)) is not None else 0.0 for c in completions]


def step_reward(completions: list, steps: list[list[str]], **kwargs) -> list[float]:
    """Rule-based process reward: the fraction of reference steps reproduced correctly and in
    order, less one step for each false step claimed. Irrelevant true steps earn nothing."""
    return [check_steps(text_of(c), steps[i]).score for i, c in enumerate(completions)]


def overlong_penalty(max_length: int, cache_length: int) -> RewardFn:
    """DAPO's soft overlong punishment: 0 up to `max_length - cache_length`, then linearly down
    to -1 at `max_length`. Length in tokens when TRL passes `completion_ids`, else characters."""
    if not 0 < cache_length <= max_length:
        raise R1kitError(f"overlong_penalty needs 0 < cache_length <= max_length, got {cache_length}, {max_length}")
    free = max_length - cache_length

    def overlong_penalty(completions: list, completion_ids: list | None = None, **kwargs) -> list[float]:
        lengths = [len(ids) for ids in completion_ids] if completion_ids is not None else [len(text_of(c)) for c in completions]
        return [0.0 if n <= free else max(-1.0, (free - n) / cache_length) for n in lengths]

    return overlong_penalty


# Reward factories by name; one with a `task` parameter is bound to the stage's task.
REGISTRY: dict[str, Callable[..., RewardFn]] = {
    "accuracy": accuracy,
    "format": lambda: format_reward,
    "answered": lambda: answered_reward,
    "bare": lambda: bare_reward,
    "steps": lambda: step_reward,
    "overlong": overlong_penalty,
}


def get(name: str, task: Task | None = None, **params: Any) -> RewardFn:
    if name not in REGISTRY:
        raise R1kitError(f"unknown reward {name!r}{suggest(name, REGISTRY)}; known rewards: {', '.join(REGISTRY)}")
    factory = REGISTRY[name]
    if task is not None and "task" in inspect.signature(factory).parameters:
        params.setdefault("task", task)
    try:
        return factory(**params)
    except TypeError as error:
        raise R1kitError(f"bad parameters for reward {name!r}: {error}") from None


def build(spec: dict[str, float | dict[str, Any]], task: Task | None = None) -> tuple[list[RewardFn], list[float]]:
    """`{"accuracy": 1.0, "overlong": {"weight": 0.5, "max_length": 128, "cache_length": 32}}`
    → (functions, weights) for `GRPOTrainer(reward_funcs=…, args=GRPOConfig(reward_weights=…))`,
    bound to `task` when the rows are all of one."""
    functions, weights = [], []
    for name, value in spec.items():
        params = dict(value) if isinstance(value, dict) else {"weight": value}
        weights.append(float(params.pop("weight", 1.0)))
        functions.append(get(name, task, **params))
    return functions, weights

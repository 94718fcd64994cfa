"""Evaluation: batched generation and scoring with the one judge (`r1kit.verify`).

Greedy pass@1, sampled pass@k and maj@k, accuracy per level with Wilson 95% intervals, and the
retention skills the tiny base model learned before specialising.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from r1kit import tasks
from r1kit.errors import R1kitError
from r1kit.numbers import format_number, parse_number
from r1kit.render import prompt_text
from r1kit.problem import Problem
from r1kit.verify import extract_answer


@dataclass
class PromptFormat:
    """How a model wants to be asked: the trace style it was trained on, and whether its
    prompts go through the tokenizer's chat template. Saved beside r1kit models (r1kit.json)."""

    style: str = "think"
    chat: bool = True

    @classmethod
    def for_model(cls, model_dir: str | Path | None, tokenizer) -> PromptFormat:
        from r1kit.models import read_prompt_info

        info = read_prompt_info(model_dir) if model_dir and Path(model_dir).is_dir() else None
        if info:
            return cls(style=info.get("style", "think"), chat=bool(info.get("chat", False)))
        return cls(style="think", chat=getattr(tokenizer, "chat_template", None) is not None)

    def prompt(self, problem: Problem, tokenizer) -> str:
        text = prompt_text(problem, self.style, tasks.get(problem.task))
        if not self.chat:
            return text
        return tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                             add_generation_prompt=True)


def wilson(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a proportion: honest at small n and near 0 or 1."""
    if n == 0:
        return (0.0, 1.0)
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples with c correct (Chen et al., 2021)."""
    if n - c < k:
        return 1.0
    return 1.0 - math.prod((n - c - i) / (n - i) for i in range(k))


def canonical_answer(answer: str | None) -> str | None:
    """Answers that are equal numbers vote together in maj@k (`12`, `12.0`, `24/2`)."""
    if answer is None:
        return None
    value = parse_number(answer)
    return format_number(value) if value is not None else answer.strip()


# ---------------------------------------------------------------- inputs


def problems_from_task(task: str, levels: list[int], count: int, seed: int,
                       exclude: set[str] = frozenset()) -> list[Problem]:
    """Held-out problems from a seed stream of their own, without any question in `exclude`
    (the normalized questions a run trained on)."""
    from r1kit.data import generate

    return generate(task, levels, count, seed + EVAL_SEED_OFFSET, exclude=exclude)


EVAL_SEED_OFFSET = 2_000_029


def problems_from_jsonl(path: str | Path, default_task: str = "arithmetic") -> list[Problem]:
    """`{"question", "answer", "level"?, "task"?}` per line; a bad line is a clear error."""
    path = Path(path)
    if not path.is_file():
        raise R1kitError(f"no such file: {path}")
    problems = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            question, answer = str(row["question"]), str(row["answer"])
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise R1kitError(f"{path}:{number}: need a JSON object with 'question' and 'answer' ({error})") from None
        task = row.get("task", default_task)
        tasks.get(task)  # unknown task → clear error now, not mid-run
        problems.append(Problem(id=str(row.get("id", f"{path.stem}-{number}")), task=task,
                                level=int(row.get("level", 0)), question=question, answer=answer,
                                metadata=row.get("metadata") or {}))
    if not problems:
        raise R1kitError(f"{path} holds no problems")
    return problems


# ---------------------------------------------------------------- generation


@dataclass
class GenerationSettings:
    max_new_tokens: int = 96
    batch_size: int = 128
    temperature: float = 1.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()  # stop strings: a sequence ends once its text holds one (kept in the text)


def generate(model, tokenizer, prompts: list[str], *, samples: int = 1, greedy: bool = True,
             settings: GenerationSettings | None = None, progress: Any = None, streamer: Any = None,
             lengths: list[tuple[int, bool]] | None = None) -> list[list[str]]:
    """`samples` completions per prompt (text after the prompt, special tokens dropped).

    `streamer` (a transformers streamer; one prompt, one sample) receives tokens as they come.
    `lengths`, when given, receives (tokens generated, ended by EOS) per completion, in order.
    """
    import torch

    settings = settings or GenerationSettings()
    if hasattr(model, "generate_texts"):  # another engine, e.g. r1kit.engines.VLLMModel
        return model.generate_texts(tokenizer, prompts, samples=samples, greedy=greedy, settings=settings,
                                    progress=progress)
    tokenizer.padding_side = "left"  # decoder-only batched generation
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    outputs: list[list[str]] = []
    per_batch = max(1, settings.batch_size // samples)
    try:
        for start in range(0, len(prompts), per_batch):
            batch = prompts[start:start + per_batch]
            encoded = tokenizer(batch, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
            kwargs: dict[str, Any] = dict(max_new_tokens=settings.max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                                          eos_token_id=tokenizer.eos_token_id, num_return_sequences=samples)
            if greedy:
                kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
            else:
                kwargs.update(do_sample=True, temperature=settings.temperature, top_p=settings.top_p, top_k=0)
            if settings.stop:
                kwargs.update(stop_strings=list(settings.stop), tokenizer=tokenizer)
            with torch.inference_mode():
                generated = model.generate(**encoded, **kwargs, streamer=streamer)
            new_tokens = generated[:, encoded["input_ids"].shape[1]:]
            texts = tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
            if lengths is not None:
                lengths.extend(_generated_length(row, tokenizer) for row in new_tokens.tolist())
            outputs.extend(texts[i * samples:(i + 1) * samples] for i in range(len(batch)))
            if progress is not None:
                progress(len(batch))
    finally:
        model.train(was_training)
    return outputs


def _generated_length(row: list[int], tokenizer) -> tuple[int, bool]:
    # generate() pads a sequence that finished early (EOS or a stop string) up to the batch's length
    if tokenizer.eos_token_id in row:
        return row.index(tokenizer.eos_token_id) + 1, True
    while row and row[-1] == tokenizer.pad_token_id:
        row.pop()
    return len(row), False


# ---------------------------------------------------------------- scoring


@dataclass
class LevelScore:
    n: int = 0
    correct: int = 0
    pass_k: float = 0.0
    maj_k: float = 0.0

    def as_dict(self, k: int) -> dict[str, Any]:
        out = {"n": self.n, "accuracy": self.correct / self.n if self.n else 0.0, "ci95": list(wilson(self.correct, self.n))}
        if k > 1:
            out[f"pass@{k}"] = self.pass_k / self.n if self.n else 0.0
            out[f"maj@{k}"] = self.maj_k / self.n if self.n else 0.0
        return out


@dataclass
class EvalResult:
    model: str
    k: int
    overall: LevelScore = field(default_factory=LevelScore)
    by_level: dict[int, LevelScore] = field(default_factory=dict)
    by_task: dict[str, LevelScore] = field(default_factory=dict)
    generated_tokens: int = 0
    prompt_tokens: int = 0
    samples: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out = {"model": self.model, **self.overall.as_dict(self.k),
               "by_level": {str(level): s.as_dict(self.k) for level, s in sorted(self.by_level.items())}}
        if len(self.by_task) > 1:
            out["by_task"] = {task: s.as_dict(self.k) for task, s in sorted(self.by_task.items())}
        return out


def score(problem: Problem, completion: str) -> float:
    return tasks.get(problem.task).score(completion, problem)


def evaluate_model(model, tokenizer, problems: list[Problem], *, name: str = "model",
                   prompt_format: PromptFormat | None = None, k: int = 1,
                   settings: GenerationSettings | None = None, progress: Any = None) -> EvalResult:
    """Greedy pass@1 on every problem; with k > 1 also k samples each for pass@k and maj@k."""
    prompt_format = prompt_format or PromptFormat.for_model(None, tokenizer)
    prompts = [prompt_format.prompt(p, tokenizer) for p in problems]
    greedy = generate(model, tokenizer, prompts, settings=settings, progress=progress)
    sampled = generate(model, tokenizer, prompts, samples=k, greedy=False, settings=settings) if k > 1 else None
    result = EvalResult(model=name, k=k)
    for i, problem in enumerate(problems):
        right = score(problem, greedy[i][0]) == 1.0
        buckets = (result.overall, result.by_level.setdefault(problem.level, LevelScore()),
                   result.by_task.setdefault(problem.task, LevelScore()))
        pass_k = maj_k = 0.0
        if sampled is not None:
            verdicts = [score(problem, text) == 1.0 for text in sampled[i]]
            pass_k = pass_at_k(len(verdicts), sum(verdicts), k)
            votes = Counter(canonical_answer(extract_answer(text)) for text in sampled[i])
            votes.pop(None, None)
            if votes:
                top = votes.most_common(1)[0][0]
                maj_k = float(any(v and canonical_answer(extract_answer(t)) == top for t, v in zip(sampled[i], verdicts)))
        for bucket in buckets:
            bucket.n += 1
            bucket.correct += right
            bucket.pass_k += pass_k
            bucket.maj_k += maj_k
        if len(result.samples) < 20:
            result.samples.append({"question": problem.question, "answer": problem.answer,
                                   "completion": greedy[i][0], "correct": right})
    result.prompt_tokens = sum(len(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts) * (1 + (k if k > 1 else 0))
    result.generated_tokens = sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for texts in greedy for t in texts)
    if sampled is not None:
        result.generated_tokens += sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for texts in sampled for t in texts)
    return result

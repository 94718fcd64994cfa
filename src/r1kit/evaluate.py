"""Evaluation: batched generation and scoring with the one judge (`r1kit.verify`).

Greedy pass@1, sampled pass@k and maj@k, accuracy per level with Wilson 95% intervals, and the
retention skills the tiny base model learned before specialising.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from r1kit import tasks
from r1kit.engines import GenerationSettings, generate_texts
from r1kit.numbers import format_number, parse_number
from r1kit.problem import Problem
from r1kit.prompting import PromptFormat
from r1kit.tasks.jsonl import read_problems
from r1kit.prompting import prompt_format as prompt_format_for
from r1kit.verify import extract_answer, extract_flexible


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


def problems_from_task(task: str | tasks.Task, levels: list[int], count: int, seed: int,
                       exclude: set[str] = frozenset(), shares: dict[int, float] | None = None) -> list[Problem]:
    """Held-out problems from a seed stream of their own, without any question in `exclude`
    (the normalized questions a run trained on). `task` and `shares` as in `data.generate`."""
    from r1kit.data import generate

    return generate(task, levels, count, seed + EVAL_SEED_OFFSET, exclude=exclude, shares=shares)


EVAL_SEED_OFFSET = 2_000_029


def problems_from_jsonl(path: str | Path, default_task: str = "arithmetic") -> list[Problem]:
    """`{"question", "answer", "level"?, "id"?, "task"?}` per line (`r1kit.tasks.jsonl.read_problems`);
    a row's `task` (default `default_task`) judges it, and an unknown one is an error now, not mid-run."""

    def task_of(row: dict) -> str:
        name = str(row.get("task", default_task))
        tasks.get(name)
        return name

    return read_problems(path, task_of)


# ---------------------------------------------------------------- scoring


@dataclass
class LevelScore:
    n: int = 0
    correct: int = 0  # strict: the answer in the requested slot
    flexible: int = 0  # flexible: the final number the text commits to, wherever it is
    pass_k: float = 0.0
    maj_k: float = 0.0

    def add(self, right: bool, flexible: bool, pass_k: float, maj_k: float) -> None:
        self.n += 1
        self.correct += right
        self.flexible += flexible
        self.pass_k += pass_k
        self.maj_k += maj_k

    def as_dict(self, k: int) -> dict[str, Any]:
        out = {"n": self.n, "accuracy": self.correct / self.n if self.n else 0.0, "ci95": list(wilson(self.correct, self.n)),
               "flexible": self.flexible / self.n if self.n else 0.0, "flexible_ci95": list(wilson(self.flexible, self.n))}
        if k > 1:
            out[f"pass@{k}"] = self.pass_k / self.n if self.n else 0.0
            out[f"maj@{k}"] = self.maj_k / self.n if self.n else 0.0
        return out


@dataclass
class EvalResult:
    """One model's scores, and one row per problem (what it was asked, what it wrote, the verdict)."""

    model: str
    k: int
    overall: LevelScore = field(default_factory=LevelScore)
    by_level: dict[int, LevelScore] = field(default_factory=dict)
    by_task: dict[str, LevelScore] = field(default_factory=dict)
    generated_tokens: int = 0
    prompt_tokens: int = 0
    problems: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out = {"model": self.model, **self.overall.as_dict(self.k),
               "by_level": {str(level): s.as_dict(self.k) for level, s in sorted(self.by_level.items())}}
        if len(self.by_task) > 1:
            out["by_task"] = {task: s.as_dict(self.k) for task, s in sorted(self.by_task.items())}
        return out

    def table_rows(self) -> list[dict[str, Any]]:
        """The one eval-row shape: `{model, level, n, accuracy, ci95, ...}` per level (an int),
        then the model's overall row (level "all")."""
        rows = [{"model": self.model, "level": level, **s.as_dict(self.k)} for level, s in sorted(self.by_level.items())]
        return [*rows, {"model": self.model, "level": "all", **self.overall.as_dict(self.k)}]

    def task_rows(self) -> list[dict[str, Any]]:
        """`{model, skill, ...}` per task, for the retention table."""
        return [{"model": self.model, "skill": task, **s.as_dict(self.k)} for task, s in sorted(self.by_task.items())]

    def examples(self, per_verdict: int = 3) -> list[dict[str, Any]]:
        """A few failures beside a few successes, for the report."""
        right = [r for r in self.problems if r["correct"]][:per_verdict]
        wrong = [r for r in self.problems if not r["correct"]][:per_verdict]
        return wrong + right


def score(problem: Problem, completion: str) -> float:
    """Strict, as lm-evaluation-harness's strict-match: only the answer slot the prompt asked for."""
    return tasks.get(problem.task).score(completion, problem)


def score_flexible(problem: Problem, completion: str) -> float:
    """Flexible, as its flexible-extract: the final number the text commits to, so a right answer
    in the wrong format counts (format learning told apart from arithmetic learning)."""
    return tasks.get(problem.task).score_answer(extract_flexible(completion), problem.answer, problem.metadata)


def evaluate_model(model, tokenizer, problems: list[Problem], *, name: str = "model",
                   prompt_format: PromptFormat | None = None, k: int = 1,
                   settings: GenerationSettings | None = None, progress: Any = None) -> EvalResult:
    """Greedy pass@1 on every problem; with k > 1 also k samples each for pass@k and maj@k.
    `progress(n)` is told of every n more sequences generated (greedy, then sampled)."""
    prompt_format = prompt_format or prompt_format_for(None, tokenizer)
    prompts = [prompt_format.prompt(p, tokenizer, tasks.get(p.task)) for p in problems]
    greedy = generate_texts(model, tokenizer, prompts, settings=settings, progress=progress)
    sampled = None
    if k > 1:
        sampled = generate_texts(model, tokenizer, prompts, samples=k, greedy=False, settings=settings,
                                 progress=None if progress is None else lambda n: progress(n * k))
    result = EvalResult(model=name, k=k)
    for i, problem in enumerate(problems):
        completion = greedy[i][0]
        right = score(problem, completion) == 1.0
        flexible = right or score_flexible(problem, completion) == 1.0
        pass_k, maj_k = sampled_scores(problem, sampled[i], k) if sampled is not None else (0.0, 0.0)
        for bucket in (result.overall, result.by_level.setdefault(problem.level, LevelScore()),
                       result.by_task.setdefault(problem.task, LevelScore())):
            bucket.add(right, flexible, pass_k, maj_k)
        result.problems.append({"id": problem.id, "task": problem.task, "level": problem.level,
                                "question": problem.question, "gold": problem.answer, "completion": completion,
                                "extracted": extract_answer(completion), "correct": right,
                                "flexible": extract_flexible(completion), "flexible_correct": flexible})
    count = lambda texts: sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)  # noqa: E731
    result.prompt_tokens = count(prompts) * (1 + (k if k > 1 else 0))
    result.generated_tokens = sum(count(texts) for texts in greedy)
    if sampled is not None:
        result.generated_tokens += sum(count(texts) for texts in sampled)
    return result


def sampled_scores(problem: Problem, texts: list[str], k: int) -> tuple[float, float]:
    """(pass@k, maj@k) of one problem's k samples."""
    verdicts = [score(problem, text) == 1.0 for text in texts]
    votes = Counter(canonical_answer(extract_answer(text)) for text in texts)
    votes.pop(None, None)
    maj_k = 0.0
    if votes:
        top = votes.most_common(1)[0][0]
        maj_k = float(any(v and canonical_answer(extract_answer(t)) == top for t, v in zip(texts, verdicts)))
    return pass_at_k(len(verdicts), sum(verdicts), k), maj_k

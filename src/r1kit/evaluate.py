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
from r1kit.verify import extract_answer, extract_bare, extract_flexible


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


def clustered_wilson(fractions: list[float], k: int) -> tuple[float, float]:
    """Wilson interval of a mean of per-problem fractions (each of k samples) at its effective sample
    size (Kish's design effect): n when a problem's samples all agree, up to n·k when they are independent."""
    n = len(fractions)
    if n == 0:
        return (0.0, 1.0)
    p = sum(fractions) / n
    if p in (0.0, 1.0) or n == 1:
        return wilson(p * n, n)  # no spread to tell the clustering from: count each problem once
    variance = sum((f - p) ** 2 for f in fractions) / (n - 1) / n  # of the mean
    effective = n * k if variance == 0 else min(n * k, max(n, p * (1 - p) / variance))
    return wilson(p * effective, effective)


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
    sampled: list[float] = field(default_factory=list)  # per sampled problem: the fraction of its k samples right
    pass_k: float = 0.0
    maj_k: float = 0.0

    def add(self, right: bool, flexible: bool, samples: SampledScore | None = None) -> None:
        self.n += 1
        self.correct += right
        self.flexible += flexible
        if samples is not None:
            self.sampled.append(samples.fraction)
            self.pass_k += samples.pass_k
            self.maj_k += samples.maj_k

    def as_dict(self, k: int, temperature: float = 1.0) -> dict[str, Any]:
        out = {"n": self.n, "accuracy": self.correct / self.n if self.n else 0.0, "ci95": list(wilson(self.correct, self.n)),
               "flexible": self.flexible / self.n if self.n else 0.0, "flexible_ci95": list(wilson(self.flexible, self.n))}
        if k > 1:
            m = len(self.sampled)
            out.update({"temperature": temperature, "sampled_n": m, "sampled@1": sum(self.sampled) / m if m else 0.0,
                        "sampled@1_ci95": list(clustered_wilson(self.sampled, k)),
                        f"pass@{k}": self.pass_k / m if m else 0.0, f"pass@{k}_ci95": list(wilson(self.pass_k, m)),
                        f"maj@{k}": self.maj_k / m if m else 0.0, f"maj@{k}_ci95": list(wilson(self.maj_k, m))})
        return out


@dataclass
class EvalResult:
    """One model's scores, and one row per problem (what it was asked, what it wrote, the verdict)."""

    model: str
    k: int
    temperature: float = 1.0  # of the k samples (greedy pass@1 does not sample)
    overall: LevelScore = field(default_factory=LevelScore)
    by_level: dict[int, LevelScore] = field(default_factory=dict)
    by_task: dict[str, LevelScore] = field(default_factory=dict)
    generated_tokens: int = 0
    prompt_tokens: int = 0
    problems: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out = {"model": self.model, **self.overall.as_dict(self.k, self.temperature),
               "by_level": {str(level): s.as_dict(self.k, self.temperature) for level, s in sorted(self.by_level.items())}}
        if len(self.by_task) > 1:
            out["by_task"] = {task: s.as_dict(self.k, self.temperature) for task, s in sorted(self.by_task.items())}
        return out

    def table_rows(self) -> list[dict[str, Any]]:
        """The one eval-row shape: `{model, level, n, accuracy, ci95, ...}` per level (an int),
        then the model's overall row (level "all")."""
        rows = [{"model": self.model, "level": level, **s.as_dict(self.k, self.temperature)}
                for level, s in sorted(self.by_level.items())]
        return [*rows, {"model": self.model, "level": "all", **self.overall.as_dict(self.k, self.temperature)}]

    def task_rows(self) -> list[dict[str, Any]]:
        """`{model, skill, ...}` per task, for the retention table."""
        return [{"model": self.model, "skill": task, **s.as_dict(self.k, self.temperature)}
                for task, s in sorted(self.by_task.items())]

    def examples(self, per_verdict: int = 3) -> list[dict[str, Any]]:
        """A few failures beside a few successes, for the report."""
        right = [r for r in self.problems if r["correct"]][:per_verdict]
        wrong = [r for r in self.problems if not r["correct"]][:per_verdict]
        return wrong + right


def strict_reader(style: str):
    """Strict reading, as lm-evaluation-harness's strict-match: only the answer slot the prompt
    asked for; under `short`, which asks for the answer alone, a one-line answer without words."""
    return extract_bare if style == "short" else extract_answer


def score(problem: Problem, completion: str, read=extract_answer) -> float:
    """Strict: the answer `read` finds (the answer slot by default), judged by the problem's task."""
    return tasks.get(problem.task).score_answer(read(completion), problem.answer, problem.metadata)


def score_flexible(problem: Problem, completion: str) -> float:
    """Flexible, as its flexible-extract: the final number the text commits to, so a right answer
    in the wrong format counts (format learning told apart from arithmetic learning)."""
    return tasks.get(problem.task).score_answer(extract_flexible(completion), problem.answer, problem.metadata)


def sampled_problems(problems: list[Problem], sample_count: int | None = None) -> list[int]:
    """The indices of the problems that get k samples: the first `sample_count` of each level (None: all)."""
    seen: Counter = Counter()
    chosen = []
    for i, problem in enumerate(problems):
        if sample_count is None or seen[problem.level] < sample_count:
            chosen.append(i)
        seen[problem.level] += 1
    return chosen


def evaluate_model(model, tokenizer, problems: list[Problem], *, name: str = "model",
                   prompt_format: PromptFormat | None = None, k: int = 1, sample_count: int | None = None,
                   settings: GenerationSettings | None = None, progress: Any = None) -> EvalResult:
    """Greedy pass@1 on every problem; with k > 1 also k samples (at `settings.temperature`) of each
    of the first `sample_count` problems a level (None: all) for sampled@1, pass@k and maj@k.
    `progress(n)` is told of every n more sequences generated (greedy, then sampled)."""
    settings = settings or GenerationSettings()
    prompt_format = prompt_format or prompt_format_for(None, tokenizer)
    prompts = [prompt_format.prompt(p, tokenizer, tasks.get(p.task)) for p in problems]
    greedy = generate_texts(model, tokenizer, prompts, settings=settings, progress=progress)
    chosen = sampled_problems(problems, sample_count) if k > 1 else []
    sampled: dict[int, list[str]] = {}
    if chosen:
        texts = generate_texts(model, tokenizer, [prompts[i] for i in chosen], samples=k, greedy=False, settings=settings,
                               progress=None if progress is None else lambda n: progress(n * k))
        sampled = dict(zip(chosen, texts))
    result = EvalResult(model=name, k=k, temperature=settings.temperature)
    read = strict_reader(prompt_format.style)
    for i, problem in enumerate(problems):
        completion = greedy[i][0]
        right = score(problem, completion, read) == 1.0
        flexible = right or score_flexible(problem, completion) == 1.0
        samples = sampled_scores(problem, sampled[i], k, read) if i in sampled else None
        for bucket in (result.overall, result.by_level.setdefault(problem.level, LevelScore()),
                       result.by_task.setdefault(problem.task, LevelScore())):
            bucket.add(right, flexible, samples)
        row = {"id": problem.id, "task": problem.task, "level": problem.level, "question": problem.question,
               "gold": problem.answer, "completion": completion, "extracted": read(completion),
               "correct": right, "flexible": extract_flexible(completion), "flexible_correct": flexible}
        if samples is not None:  # what the paired sampled comparisons read
            row.update({"samples": samples.samples, "sampled_correct": samples.correct,
                        f"pass@{k}": samples.pass_k, f"maj@{k}": samples.maj_k})
        result.problems.append(row)
    count = lambda texts: sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)  # noqa: E731
    result.prompt_tokens = count(prompts) + k * count([prompts[i] for i in chosen])
    result.generated_tokens = sum(count(texts) for texts in greedy) + sum(count(texts) for texts in sampled.values())
    return result


@dataclass(frozen=True)
class SampledScore:
    """One problem's samples: how many are right (strict), and its pass@k and maj@k."""

    samples: int
    correct: int
    pass_k: float
    maj_k: float

    @property
    def fraction(self) -> float:
        return self.correct / self.samples


def sampled_scores(problem: Problem, texts: list[str], k: int, read=extract_answer) -> SampledScore:
    """One problem's k samples, scored strictly (`read`: the strict reader of the prompt's style)."""
    verdicts = [score(problem, text, read) == 1.0 for text in texts]
    votes = Counter(canonical_answer(read(text)) for text in texts)
    votes.pop(None, None)
    maj_k = 0.0
    if votes:
        top = votes.most_common(1)[0][0]
        maj_k = float(any(v and canonical_answer(read(t)) == top for t, v in zip(texts, verdicts)))
    return SampledScore(len(verdicts), sum(verdicts), pass_at_k(len(verdicts), sum(verdicts), k), maj_k)

"""Verified rewriting: a teacher turns the compiler's exact steps into natural language, and a
rewrite is kept only if the step checker still finds every step in it.

A rewrite is rejected (first failure wins) when it is
  overlong       cut off at the token budget (see `r1kit.teachers.collect`);
  no_answer      without a final answer (`r1kit.verify.extract_answer`);
  wrong_answer   with a wrong final answer;
  false_step     claiming a calculation that does not re-compute (a wrong intermediate result);
  missing_step   missing any of the compiler's steps, or having one with another result;
  duplicate      the same text as a rewrite already kept for the problem.

Kept rows have the shape collection writes; the completion is the rewrite in the `think` format
(`<think>rewrite</think><answer>…</answer>`) or, for `verbal`, the rewrite as it is. The output
directory has collection's layout and resumes the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from r1kit import tasks
from r1kit.data import parse_levels
from r1kit.errors import R1kitError
from r1kit.render import prompt_text
from r1kit.problem import Problem
from r1kit.teachers.collect import CollectSummary, Job, Verdict, judge_trace, run_job

STYLES = ("think", "verbal")  # the styles a natural-language rewrite can be

REWRITE_PROMPT = """Rewrite this worked solution as a short explanation in plain English.

Problem: {problem}
Steps, in order (they are exact):
{steps}
Answer: {answer}

Rules:
- Write one sentence per step, in the same order, and state its calculation with exactly these numbers, \
for example "{example}".
- Do not skip a step and do not add any other calculation.
- End with: The answer is {answer}.
Reply with the explanation only."""


def rewrite_prompt(problem: Problem) -> str:
    """The request a teacher gets: the question, the compiler's exact steps and the answer."""
    lines = []
    for number, step in enumerate(problem.steps, 1):
        lines.append(f"{number}. {step.text()}" + (f"  (now: {step.state})" if step.state else ""))
    example = problem.steps[0].text() if problem.steps else "3 * 4 = 12"
    return REWRITE_PROMPT.format(problem=tasks.get(problem.task).instruction(problem), steps="\n".join(lines) or "(none)",
                                 answer=problem.answer, example=example)


def judge_rewrite(problem: Problem, text: str) -> Verdict:
    """Collection's rule, plus every reference step with its right result: once nothing claimed
    is false, a step score below 1 means a reference step is missing."""
    verdict, score = judge_trace(problem, text, min_step_score=1.0)
    return ("missing_step" if verdict == "low_step_score" else verdict), score


def as_completion(problem: Problem, text: str, style: str) -> str:
    """The kept rewrite in the trace format `style` trains (see `r1kit.render`)."""
    text = text.strip()
    if style == "think":
        return f"<think>\n{text}\n</think>\n<answer>{problem.answer}</answer>"
    return text


def rewrite(teacher, *, task: str, levels: str | list[int], count: int, out: str | Path,
            samples_per_problem: int = 1, seed: int = 0, max_tokens: int = 512, temperature: float = 0.0,
            style: str = "think", chunk_size: int = 32, keep_rejected: int = 1000,
            progress: Callable[[int], None] | None = None) -> CollectSummary:
    """Ask `teacher` to rewrite the compiler's traces of `count` generated problems in natural
    language; keep the rewrites the step checker verifies in `out/traces.jsonl`. Resumable."""
    if style not in STYLES:
        raise R1kitError(f"a rewrite is natural language: style must be one of {', '.join(STYLES)}, got {style!r}")
    config = {"mode": "rewrite", "teacher": teacher.name, "style": style, "task": task,
              "levels": parse_levels(levels), "count": count, "samples_per_problem": samples_per_problem,
              "seed": seed, "max_tokens": max_tokens, "temperature": temperature, "chunk_size": chunk_size}
    job = Job(ask=rewrite_prompt, judge=judge_rewrite,
              row=lambda p, text: (prompt_text(p, style, tasks.get(p.task)), as_completion(p, text, style)))
    return run_job(teacher, job, config, out, keep_rejected=keep_rejected, progress=progress)

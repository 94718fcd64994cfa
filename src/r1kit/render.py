"""Problem → text. Prompt templates and trace styles.

- `compact`: short, for character-level tiny models: `12+3*(4-1)\n` → `4-1=3;3*3=9;12+9=21|answer 21`
- `think`: `<think>\n…one step per line…\n</think>\n<answer>21</answer>` for chat models
- `verbal`: natural-language sentences (seeded phrasings) ending in `The answer is 21.`
- `answer`: the answer alone, for answer-only training (the R1 paper's baseline)
- `short`: the task's question in words, asking for the final answer alone: `Compute 3 + 5.\nGive
  only the final answer.` → `8`; the prompt a small instruct base answers best (R1-Zero from it)
"""

from __future__ import annotations

import random
from typing import Protocol

from r1kit.errors import R1kitError
from r1kit.numbers import format_number
from r1kit.problem import Problem, Step

STYLES = ("compact", "think", "verbal", "answer", "short")

THINK_INSTRUCTION = (
    "Think step by step inside <think> </think>, writing each operation as `a op b = c`, "
    "then give the final answer inside <answer> </answer>."
)

# The wording SmolLM2-135M-Instruct answered best of those measured (benchmarks/smollm2_rl.md).
SHORT_INSTRUCTION = "Give only the final answer."

# At least five phrasings per kind of step; {a} {b} {r} are the operands and the result.
VERBAL_PHRASES: dict[str, tuple[str, ...]] = {
    "+": (
        "Add {a} and {b} to get {r}.",
        "{a} plus {b} is {r}.",
        "Adding {b} to {a} gives {r}.",
        "The sum of {a} and {b} is {r}.",
        "Next, {a} plus {b} equals {r}.",
    ),
    "-": (
        "Subtract {b} from {a} to get {r}.",
        "{a} minus {b} is {r}.",
        "Taking {b} away from {a} leaves {r}.",
        "The difference of {a} and {b} is {r}.",
        "Next, {a} minus {b} equals {r}.",
    ),
    "*": (
        "Multiply {a} by {b} to get {r}.",
        "{a} times {b} is {r}.",
        "Multiplying {a} by {b} gives {r}.",
        "The product of {a} and {b} is {r}.",
        "Next, {a} times {b} equals {r}.",
    ),
    "/": (
        "Divide {a} by {b} to get {r}.",
        "{a} divided by {b} is {r}.",
        "Dividing {a} by {b} gives {r}.",
        "The quotient of {a} and {b} is {r}.",
        "Next, {a} divided by {b} equals {r}.",
    ),
}
VERBAL_ANSWERS = (
    "The answer is {answer}.",
    "So the answer is {answer}.",
    "Therefore, the answer is {answer}.",
    "That makes the answer {answer}.",
    "Final answer: {answer}.",
)


class Phrasing(Protocol):
    """What rendering needs from a task (an `r1kit.tasks.Task` is one): how it asks in words,
    and how it asks a character-level model."""

    def instruction(self, problem: Problem) -> str: ...

    def compact_prompt(self, problem: Problem) -> str: ...


def prompt_text(problem: Problem, style: str, task: Phrasing) -> str:
    check_style(style)
    if style in ("compact", "answer"):
        return task.compact_prompt(problem) + "\n"
    if style == "think":
        return f"{task.instruction(problem)}\n{THINK_INSTRUCTION}"
    if style == "short":
        return f"{task.instruction(problem)}\n{SHORT_INSTRUCTION}"
    return f"{task.instruction(problem)}\nExplain each step, then state the answer."


def completion_text(problem: Problem, style: str) -> str:
    check_style(style)
    if style == "answer":
        return f"answer {problem.answer}"
    if style == "short":
        return problem.answer
    if style == "compact":
        steps = ";".join(step.text(spaced=False) for step in problem.steps)
        return f"{steps}|answer {problem.answer}" if steps else f"answer {problem.answer}"
    if style == "think":
        lines = []
        for step in problem.steps:
            lines.append(step.text())
            if step.state:
                lines.append(step.state)
        return "<think>\n" + "\n".join(lines) + f"\n</think>\n<answer>{problem.answer}</answer>"
    return verbal_trace(problem)


def verbal_trace(problem: Problem) -> str:
    rng = random.Random(f"verbal:{problem.id}")  # same phrasing for the same problem, everywhere
    sentences = [verbal_step(step, rng) for step in problem.steps]
    sentences.append(rng.choice(VERBAL_ANSWERS).format(answer=problem.answer))
    return " ".join(sentences)


def verbal_step(step: Step, rng: random.Random) -> str:
    a, b, r = (format_number(v) for v in (step.left, step.right, step.result))
    sentence = rng.choice(VERBAL_PHRASES[step.op]).format(a=a, b=b, r=r)
    sentence = sentence[0].upper() + sentence[1:]
    if step.state and step.kind == "digit":  # a digit-level note: "carry 1", "borrow 1"
        return f"{sentence} {step.state[0].upper()}{step.state[1:]}."
    return f"{sentence} Now we have {step.state}." if step.state else sentence


def render(problem: Problem, style: str, task: Phrasing) -> tuple[str, str]:
    return prompt_text(problem, style, task), completion_text(problem, style)


def check_style(style: str) -> None:
    if style not in STYLES:
        raise R1kitError(f"unknown style {style!r}; choose one of {', '.join(STYLES)}")

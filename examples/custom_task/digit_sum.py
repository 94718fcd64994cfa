"""Your own task for r1kit: the sum of a number's digits, with exact steps, a checker and a reward.

`digit_sum.yaml` imports this file (`imports: [digit_sum.py]`), which registers the task
`digit_sum` and the reward `closeness` for every stage of the recipe.
"""

import random

from r1kit import rewards, tasks
from r1kit.problem import Problem, Step, problem_id
from r1kit.tasks import Task
from r1kit.verify import extract_answer

DIGITS = {1: 4, 2: 5, 3: 6, 4: 7}  # level → how many digits the number has


class DigitSumTask(Task):
    """`digit sum 4821` → `15`, by the steps 4 + 8 = 12, 12 + 2 = 14, 14 + 1 = 15."""

    name = "digit_sum"
    levels = tuple(DIGITS)

    def make(self, seed: int, level: int) -> Problem:
        """One problem from `random.Random(seed)`: the same seed gives the same problem everywhere."""
        rng = random.Random(seed)
        digits = [rng.randint(1, 9)] + [rng.randint(0, 9) for _ in range(DIGITS[level] - 1)]
        steps, total = [], digits[0]
        for digit in digits[1:]:
            steps.append(Step.compute("+", total, digit))  # computes the result: every step checks
            total = steps[-1].result
        question = "digit sum " + "".join(map(str, digits))
        return Problem(id=problem_id(self.name, level, question), task=self.name, level=level,
                       question=question, answer=str(total), steps=steps)

    def instruction(self, problem: Problem) -> str:
        """The question in words, for chat models."""
        return f"What is the sum of the digits of {problem.question.split()[-1]}?"

    def score_answer(self, predicted: str | None, problem_answer: str, metadata=None) -> float:
        """The checker: 1.0 for the exact whole number, else 0.0 (model output is parsed, never run)."""
        return float(predicted is not None and predicted.strip() == problem_answer)


def closeness(scale: int = 10):
    """A reward factory (its parameters come from the recipe: `closeness: {weight: 0.5, scale: 5}`).
    Partial credit for a near miss: 1.0 when right, down to 0.0 at `scale` units off, 0.0 without
    a whole number. It gives GRPO a signal where exact answers are still rare."""

    def closeness_reward(completions: list, answer: list[str], **columns) -> list[float]:
        scores = []
        for completion, gold in zip(completions, answer):
            predicted = (extract_answer(rewards.text_of(completion)) or "").strip()
            whole = predicted.removeprefix("-").isdigit()
            scores.append(max(0.0, 1.0 - abs(int(predicted) - int(gold)) / scale) if whole else 0.0)
        return scores

    return closeness_reward


# replace=True: importing this file again (a notebook, a second recipe) replaces instead of failing
tasks.register("digit_sum", DigitSumTask, replace=True)
rewards.REGISTRY["closeness"] = closeness

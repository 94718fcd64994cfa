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


def closeness_reward(completions: list, answer: list[str], **columns) -> list[float]:
    """Partial credit for a near miss: 1.0 when right, 0.1 less for each unit off, 0.0 without a
    whole number. It gives GRPO a signal where exact answers are still rare."""
    scores = []
    for completion, gold in zip(completions, answer):
        predicted = extract_answer(rewards.text_of(completion)) or ""
        off = abs(int(predicted) - int(gold)) if predicted.strip().lstrip("-").isdigit() else None
        scores.append(0.0 if off is None else max(0.0, 1.0 - off / 10))
    return scores


# replace=True: importing this file again (a notebook, a second recipe) replaces instead of failing
tasks.register("digit_sum", DigitSumTask, replace=True)
rewards.REGISTRY["closeness"] = lambda: closeness_reward  # a factory: `rewards.get` calls it with the recipe's params

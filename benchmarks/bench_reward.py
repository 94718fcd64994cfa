"""`accuracy_reward` throughput vs math-verify's `parse` + `verify` on the same 10 000 completions,
measured side by side in one run, with a check that the verdicts agree on the numeric ones.

    python benchmarks/bench_reward.py [--count 10000]
"""

import argparse
import random
import time

from math_verify import parse, verify

from r1kit import tasks
from r1kit.render import completion_text
from r1kit.rewards import accuracy_reward


def completions(count: int) -> tuple[list[str], list[str]]:
    """Think-style completions for real problems; a third carry a wrong answer, some hedge."""
    rng = random.Random(0)
    problems = [p for level in (1, 2, 3, 4) for p in tasks.get("arithmetic").generate(count // 4, seed=1, level=level)]
    texts, answers = [], []
    for problem in problems:
        text = completion_text(problem, "think")
        roll = rng.random()
        if roll < 0.33:
            wrong = str(int(problem.answer) + rng.choice((-1, 1, 10)))
            text = text.replace(f"<answer>{problem.answer}</answer>", f"<answer>{wrong}</answer>")
        elif roll < 0.4:
            text = text.replace(f"<answer>{problem.answer}</answer>", f"<answer>{problem.answer}.0</answer>")
        texts.append(text)
        answers.append(problem.answer)
    return texts, answers


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=10_000)
    args = parser.parse_args()
    texts, answers = completions(args.count)

    start = time.perf_counter()
    ours = accuracy_reward(texts, answer=answers)
    ours_s = time.perf_counter() - start

    # math-verify gets the answer block's text: given the whole completion it extracts numbers
    # from the <think> block too (it judged `4 = 4 … <answer>5</answer>` right for gold 4).
    slots = [t[t.rindex("<answer>") + 8:t.rindex("</answer>")] for t in texts]
    start = time.perf_counter()
    gold = [parse(a) for a in answers]
    theirs = [float(verify(g, parse(slot))) for g, slot in zip(gold, slots)]
    theirs_s = time.perf_counter() - start

    agree = sum(a == b for a, b in zip(ours, theirs))
    print(f"r1kit accuracy_reward:       {len(texts) / ours_s:,.0f} completions/s")
    print(f"math-verify parse + verify:  {len(texts) / theirs_s:,.0f} completions/s")
    print(f"ratio: {theirs_s / ours_s:.1f}x  (target >= 10x)")
    print(f"identical verdicts: {agree}/{len(texts)} = {agree / len(texts):.4f}  (accuracy {sum(ours) / len(ours):.3f})")


if __name__ == "__main__":
    main()

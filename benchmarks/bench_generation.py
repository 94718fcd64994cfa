"""Problems with exact traces per second (r1kit) vs reasoning-gym's `basic_arithmetic`
(question + answer only), at comparable settings, measured side by side in one run.

    python benchmarks/bench_generation.py [--count 20000]

Comparable settings: r1kit level 4 (4-5 terms, numbers up to 50, + - * /, nested parentheses,
negatives, exact division) vs reasoning-gym with 4-5 terms of 1-2 digits, all four operators,
parentheses and negation. Both generate `count` items from a fixed seed; best of 3 rounds.
"""

import argparse
import time

import reasoning_gym

from r1kit import tasks
from r1kit.render import completion_text


def interleaved_best(rounds, *fns):
    """Best time of each function over `rounds`, alternating them so that load from other
    processes falls on both alike."""
    best = [float("inf")] * len(fns)
    for _ in range(rounds):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--level", type=int, default=4)
    args = parser.parse_args()
    task = tasks.get("arithmetic")

    def r1kit_run():
        return task.generate(args.count, seed=0, level=args.level)

    def r1kit_rendered():
        for problem in task.generate(args.count, seed=0, level=args.level):
            completion_text(problem, "think")  # the trace as text, as training data needs it

    def gym_run():
        dataset = reasoning_gym.create_dataset(
            "basic_arithmetic", size=args.count, seed=0, min_terms=4, max_terms=5, min_digits=1, max_digits=2
        )
        for item in dataset:
            item["question"], item["answer"]

    r1kit_s, rendered_s, gym_s = interleaved_best(5, r1kit_run, r1kit_rendered, gym_run)
    print(f"r1kit arithmetic L{args.level}, problems with exact steps: {args.count / r1kit_s:,.0f} problems/s")
    print(f"  ... and rendered as think-style text:    {args.count / rendered_s:,.0f} problems/s")
    print(f"reasoning-gym basic_arithmetic (q + a):     {args.count / gym_s:,.0f} problems/s")
    print(f"ratio r1kit / reasoning-gym: {gym_s / r1kit_s:.2f}x with steps, {gym_s / rendered_s:.2f}x rendered  (target >= 1.0)")


if __name__ == "__main__":
    main()

"""Paired comparison of two models on the same problems: what a stage bought, with a 95% interval.

Both models answered the same problems, so the difference is measured per problem: only the
discordant pairs (b: only the new model right, c: only the old one right) carry information. That
makes the interval far narrower than two overlapping Wilson intervals suggest.

The sampled metrics (sampled@1, pass@k, maj@k) give each problem a score in [0, 1]: their
difference gets a bootstrap over problems and a paired sign-flip test, which on 0/1 scores is
McNemar's exact test again.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np

from r1kit.errors import R1kitError

RESAMPLES = 10_000
SEED = 0  # fixed: the same rows give the same interval on every machine
METRICS = {"strict": "correct", "flexible": "flexible_correct"}  # metric name -> per-problem verdict key
EXACT_FLIPS = 16  # up to this many nonzero differences the sign-flip test enumerates every sign pattern
CHUNK = 1_000  # resamples drawn at a time: bounded memory at thousands of problems


def mcnemar_p(b: int, c: int) -> float:
    """Exact McNemar test: two-sided binomial(b + c, 1/2) on the discordant pairs. Exact integers,
    so no underflow at thousands of pairs."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(b, c) + 1))
    return min(1.0, 2 * tail / 2**n)


def bootstrap_interval(b: int, c: int, n: int, *, resamples: int = RESAMPLES, seed: int = SEED) -> tuple[float, float]:
    """Percentile 95% interval of the paired difference, resampling problems with replacement.
    A problem's difference is +1 (b of them), -1 (c) or 0, so a resample is one multinomial draw of
    those three counts: the same bootstrap as resampling indices, in O(resamples) memory."""
    if b == c == 0:
        return (0.0, 0.0)
    counts = np.random.default_rng(seed).multinomial(n, [b / n, c / n, (n - b - c) / n], size=resamples)
    diffs = (counts[:, 0] - counts[:, 1]) / n
    low, high = np.percentile(diffs, [2.5, 97.5])
    return (float(low), float(high))


def verdict(low: float, high: float, p: float) -> str:
    """A gain or a loss needs both the bootstrap interval clear of 0 and McNemar's exact p < 0.05:
    with few discordant pairs the percentile bootstrap is too narrow (5 vs 0 of 50 problems gives an
    interval above 0, exact p = 0.0625; measured on the SmolLM2 recipe)."""
    if low > 0 and p < 0.05:
        return "gain"
    if high < 0 and p < 0.05:
        return "loss"
    return "no measurable change"


def _check_same(new: dict, old: dict) -> None:
    if new.keys() != old.keys():
        only_new, only_old = len(new.keys() - old.keys()), len(old.keys() - new.keys())
        raise R1kitError(f"a paired comparison needs the same problems: {only_new} problem(s) only in the new "
                         f"model's rows, {only_old} only in the baseline's; evaluate both on the same set")
    if not new:
        raise R1kitError("a paired comparison needs at least one problem")


def paired(new: dict[Any, bool], old: dict[Any, bool]) -> dict[str, Any]:
    """Two models' verdicts on the same problems (keyed by problem id): accuracies, the difference
    new - old with its paired interval, the McNemar p-value, the discordant counts and a verdict."""
    _check_same(new, old)
    n = len(new)
    b = sum(new[k] and not old[k] for k in new)
    c = sum(old[k] and not new[k] for k in new)
    accuracy, baseline_accuracy = sum(map(bool, new.values())) / n, sum(map(bool, old.values())) / n
    low, high = bootstrap_interval(b, c, n)
    p = mcnemar_p(b, c)
    return {"n": n, "accuracy": accuracy, "baseline_accuracy": baseline_accuracy, "diff": (b - c) / n,
            "low": low, "high": high, "p_mcnemar": p, "b": b, "c": c, "verdict": verdict(low, high, p)}


def bootstrap_mean_interval(diffs: np.ndarray, *, resamples: int = RESAMPLES, seed: int = SEED) -> tuple[float, float]:
    """Percentile 95% interval of the mean per-problem difference, resampling problems with replacement."""
    rng, n = np.random.default_rng(seed), len(diffs)
    means = np.concatenate([diffs[rng.integers(0, n, size=(min(CHUNK, resamples - done), n))].mean(axis=1)
                            for done in range(0, resamples, CHUNK)])
    low, high = np.percentile(means, [2.5, 97.5])
    return (float(low), float(high))


def sign_flip_p(diffs: np.ndarray, *, resamples: int = RESAMPLES, seed: int = SEED) -> float:
    """Two-sided paired permutation test: under no difference each problem's difference is as likely
    negated. Exact over every sign pattern for few nonzero differences, Monte-Carlo (fixed seed) beyond."""
    nonzero = diffs[diffs != 0]
    m = len(nonzero)
    if m == 0:
        return 1.0
    observed = abs(nonzero.sum()) - 1e-9  # a tie counts as extreme, whatever the float rounding
    if m <= EXACT_FLIPS:
        signs = 1 - 2 * ((np.arange(2**m)[:, None] >> np.arange(m)) & 1)
        return float(np.mean(np.abs(signs @ nonzero) >= observed))
    rng = np.random.default_rng(seed)
    flips = lambda count: 2.0 * rng.integers(0, 2, size=(count, m)) - 1  # noqa: E731
    extreme = sum(int(np.sum(np.abs(flips(min(CHUNK, resamples - done)) @ nonzero) >= observed))
                  for done in range(0, resamples, CHUNK))
    return (1 + extreme) / (1 + resamples)


def unpaired_means(before: list[float], after: list[float], *, resamples: int = RESAMPLES,
                   seed: int = SEED) -> dict[str, Any]:
    """Two independent samples (a training stage's per-step logs, early and late): the difference of
    their means, after - before, with a percentile 95% interval that resamples each on its own."""
    if len(before) < 2 or len(after) < 2:
        raise R1kitError("an unpaired comparison needs at least two values on each side")
    rng, a, b = np.random.default_rng(seed), np.asarray(before, float), np.asarray(after, float)
    diffs = (b[rng.integers(0, len(b), size=(resamples, len(b)))].mean(axis=1)
             - a[rng.integers(0, len(a), size=(resamples, len(a)))].mean(axis=1))
    low, high = np.percentile(diffs, [2.5, 97.5])
    return {"before": float(a.mean()), "after": float(b.mean()), "diff": float(b.mean() - a.mean()),
            "low": float(low), "high": float(high)}


def paired_scores(new: dict[Any, float], old: dict[Any, float]) -> dict[str, Any]:
    """Two models' scores in [0, 1] on the same problems (keyed by problem id): mean scores, the
    difference new - old with its paired interval, the sign-flip p-value, how many problems each
    scored higher on, and a verdict."""
    _check_same(new, old)
    keys = list(new)
    scores, baseline_scores = np.array([new[k] for k in keys], float), np.array([old[k] for k in keys], float)
    diffs = scores - baseline_scores
    low, high = bootstrap_mean_interval(diffs)
    p = sign_flip_p(diffs)
    return {"n": len(keys), "accuracy": float(scores.mean()), "baseline_accuracy": float(baseline_scores.mean()),
            "diff": float(diffs.mean()), "low": low, "high": high, "p_sign_flip": p, "higher": int(np.sum(diffs > 0)),
            "lower": int(np.sum(diffs < 0)), "verdict": verdict(low, high, p)}


def sampled_metrics(rows: list[dict[str, Any]]) -> list[str]:
    """The sampled metrics rows carry (none when the eval drew no samples): sampled@1, pass@k, maj@k."""
    k = next((row["samples"] for row in rows if "samples" in row), None)
    return [] if k is None else ["sampled@1", f"pass@{k}", f"maj@{k}"]


def metrics_of(rows: list[dict[str, Any]], baseline_rows: list[dict[str, Any]]) -> list[str]:
    """Every metric two models' rows can be compared on: strict and flexible, then the sampled ones
    both carry (at the same k)."""
    return [*METRICS, *[m for m in sampled_metrics(rows) if m in sampled_metrics(baseline_rows)]]


def _sampled_score(row: dict[str, Any], metric: str) -> float:
    return row["sampled_correct"] / row["samples"] if metric == "sampled@1" else row[metric]


def _keyed(rows: list[dict[str, Any]], metric: str) -> dict[tuple[str, int], Any]:
    """Problem id -> verdict (strict, flexible) or score (a sampled metric, over the rows that were
    sampled); a repeated id (the same question twice in a file) pairs by occurrence."""
    seen: Counter = Counter()
    out = {}
    for row in rows:
        key = (row["id"], seen[row["id"]])
        seen[row["id"]] += 1
        if metric in METRICS:
            out[key] = bool(row[METRICS[metric]])
        elif "samples" in row:
            out[key] = _sampled_score(row, metric)
    return out


def compare(model: str, baseline: str, rows: list[dict[str, Any]], baseline_rows: list[dict[str, Any]],
            metric: str = "strict") -> list[dict[str, Any]]:
    """Comparison rows of two models' per-problem rows (`r1kit.evaluate`'s shape) on one metric
    (`metrics_of`): one per level (an int, ascending), then every level pooled (level "all")."""
    if not rows and not baseline_rows:
        return []  # nothing evaluated: nothing to compare
    test = paired if metric in METRICS else paired_scores
    levels = sorted({r["level"] for r in rows} | {r["level"] for r in baseline_rows})
    groups = [(level, [r for r in rows if r["level"] == level], [r for r in baseline_rows if r["level"] == level])
              for level in levels]
    keyed = [(level, _keyed(new, metric), _keyed(old, metric))
             for level, new, old in [*groups, ("all", rows, baseline_rows)]]
    return [{"model": model, "baseline": baseline, "level": level, **test(new, old), "metric": metric}
            for level, new, old in keyed if new or old]  # a level none of whose problems were sampled: no row

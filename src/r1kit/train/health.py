"""RL health checks on GRPO's logged metrics: the symptoms that make GRPO buy nothing or undo
what SFT taught, each named with its number and what to change.

`check(history, settings)` is pure (a list of TRL log dicts in, findings out) so it can be tested
on synthetic logs; `RLHealth` is the TrainerCallback that runs it on every log event, prints one
console line the first time a symptom appears (not a line per step), and appends a `health`
record to metrics.jsonl:

    {"step": 40, "health": "reward_falling", "value": -0.21, "message": "...", "advice": "..."}
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from transformers import TrainerCallback

from r1kit.train.common import console_line


@dataclass(frozen=True)
class HealthSettings:
    clipped_ratio: float = 0.2  # completions/clipped_ratio above this: completions are cut off
    zero_std: float = 0.6  # frac_reward_zero_std above this (mean of the last `recent` logs): little signal
    entropy_floor: float = 0.01  # mean token entropy below this: sampling is (nearly) greedy
    entropy_drop: float = 0.2  # ... or below this fraction of the first logged entropy
    window: int = 6  # logged steps in the reward-trend fit
    slope_t: float = 2.5  # the fit's slope must be this many standard errors below zero
    min_drop: float = 0.05  # and the fitted fall over the window at least this much reward
    recent: int = 2  # logs averaged for the level checks (clipping, zero-variance groups)


@dataclass(frozen=True)
class Finding:
    kind: str  # truncated | zero_variance | entropy_collapse | reward_falling
    step: int
    value: float
    message: str
    advice: str

    def record(self) -> dict[str, Any]:
        return {"step": self.step, "health": self.kind, "value": round(self.value, 6), "message": self.message,
                "advice": self.advice}

    def line(self) -> str:
        return f"GRPO health, step {self.step}: {self.message}; {self.advice}"


def reward_slope(steps: list[float], values: list[float]) -> tuple[float, float]:
    """Least-squares slope of `values` against `steps`, and its standard error (inf when undefined)."""
    n = len(steps)
    if n < 3:
        return 0.0, math.inf
    mx, my = sum(steps) / n, sum(values) / n
    sxx = sum((x - mx) ** 2 for x in steps)
    if sxx == 0:
        return 0.0, math.inf
    slope = sum((x - mx) * (y - my) for x, y in zip(steps, values)) / sxx
    residual = sum((y - my - slope * (x - mx)) ** 2 for x, y in zip(steps, values))
    se = math.sqrt(residual / (n - 2) / sxx)
    return slope, se


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def check(history: list[dict[str, Any]], settings: HealthSettings = HealthSettings(), *,
          max_completion_length: int | None = None, learning_rate: float | None = None,
          beta: float | None = None, num_generations: int | None = None) -> list[Finding]:
    """The symptoms present at the end of `history` (TRL's training log dicts, oldest first,
    each with a `step`). Rows without GRPO metrics (e.g. the final summary) are ignored."""
    rows = [r for r in history if "reward" in r]
    if not rows:
        return []
    s, step, found = settings, int(rows[-1].get("step", len(rows))), []

    clipped = [r["completions/clipped_ratio"] for r in rows[-s.recent:] if "completions/clipped_ratio" in r]
    if clipped and _mean(clipped) > s.clipped_ratio:
        limit = f" (now {max_completion_length})" if max_completion_length else ""
        found.append(Finding("truncated", step, _mean(clipped),
                             f"{_mean(clipped):.0%} of completions hit max_completion_length and were cut off",
                             f"raise max_completion_length{limit}, or add the `overlong` reward to teach shorter answers"))

    zero = [r["frac_reward_zero_std"] for r in rows[-s.recent:] if "frac_reward_zero_std" in r]
    if zero and _mean(zero) > s.zero_std:
        accuracy = [r[k] for r in rows[-s.recent:] for k in r if k.startswith("rewards/accuracy") and k.endswith("/mean")]
        side = ""
        if accuracy:
            side = (" (mostly all-correct groups: use harder levels)" if _mean(accuracy) > 0.5
                    else " (mostly all-wrong groups: use easier levels)")
        groups = f" (now {num_generations})" if num_generations else ""
        found.append(Finding("zero_variance", step, _mean(zero),
                             f"{_mean(zero):.0%} of groups have the same reward for every completion, so they teach nothing",
                             f"more generations per prompt{groups}, a level mix nearer 50% pass rate{side}, "
                             "or the curriculum's dynamic sampling"))

    entropies = [r["entropy"] for r in rows if "entropy" in r]
    if entropies:
        first, last = entropies[0], entropies[-1]
        collapsed = last < s.entropy_floor or (len(entropies) > 1 and first > 0 and last < s.entropy_drop * first)
        if collapsed:
            found.append(Finding("entropy_collapse", step, last,
                                 f"token entropy {last:.3g} (first logged {first:.3g}): the policy samples almost "
                                 "the same completion every time",
                                 "raise temperature, lower learning_rate, or keep it near the SFT model with beta > 0"))

    if len(rows) >= s.window:
        tail = rows[-s.window:]
        slope, se = reward_slope([float(r["step"]) for r in tail], [float(r["reward"]) for r in tail])
        span = tail[-1]["step"] - tail[0]["step"]
        if se < math.inf and slope < -s.slope_t * se and -slope * span >= s.min_drop:
            lr = f" (now {learning_rate:g})" if learning_rate else ""
            kl = "raise beta (KL to the SFT model)" if beta else "set beta > 0 (KL to the SFT model)"
            found.append(Finding("reward_falling", step, slope * 100,
                                 f"training reward falling {slope * 100:+.3f} per 100 steps over the last "
                                 f"{s.window} logs ({tail[0]['reward']:.3f} -> {tail[-1]['reward']:.3f}, "
                                 f"t = {slope / se if se else -math.inf:.1f})",
                                 f"lower learning_rate{lr}, {kl}, or more prompts per step"))
    return found


class RLHealth(TrainerCallback):
    """Runs `check` on every log event. Each kind of symptom is reported once per run, when it
    first appears (one console line and one `health` record): a value hovering about its
    threshold must not print a line every few steps."""

    def __init__(self, path: Path | None = None, say: Callable[[str], None] | None = None,
                 settings: HealthSettings = HealthSettings()):
        self.path = Path(path) if path is not None else None
        self.say = say or console_line
        self.settings = settings
        self.history: list[dict[str, Any]] = []
        self.reported: set[str] = set()
        self.findings: list[Finding] = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        self.history.append({"step": state.global_step, **logs})
        found = check(self.history, self.settings, max_completion_length=getattr(args, "max_completion_length", None),
                      learning_rate=getattr(args, "learning_rate", None), beta=getattr(args, "beta", None),
                      num_generations=getattr(args, "num_generations", None))
        if "reward" not in logs:  # a summary row: nothing new to judge
            return
        for finding in found:
            if finding.kind in self.reported:
                continue
            self.reported.add(finding.kind)
            self.findings.append(finding)
            self.say(finding.line())
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a") as f:
                    f.write(json.dumps(finding.record()) + "\n")

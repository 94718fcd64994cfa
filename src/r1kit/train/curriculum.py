"""A difficulty curriculum with dynamic sampling for GRPO: which prompts TRL's GRPOTrainer trains on.

Two rules decide the next prompts, both from the accuracy reward's groups (the `num_generations`
completions of one prompt):

- Dynamic sampling (after DAPO, but history-based): a group whose pass rate is 0 or 1 has zero
  advantage and teaches nothing. DAPO regenerates until the batch is full of informative groups;
  TRL generates inside its training step, so a sampler cannot ask for more. Instead each problem
  keeps the pass rate of its *last* group, and the sampler skips problems whose last group was
  all-correct or all-wrong (keeping each with probability `keep_zero_variance`); unseen problems
  are eligible. This filters on history, not by regenerating: a problem is judged by the last
  time it was drawn.
- Levels: prompts come from the active level plus a `lower_share` of the levels below it (so the
  model does not forget them); when the pass rate of the active level over its last `window`
  groups reaches `promote_at`, the next level becomes active (one console line).

`Curriculum` is the state (pure Python, testable without a model); `observed` wraps the accuracy
reward to feed it the scores TRL computes anyway; `CurriculumSampler` replaces TRL's
`RepeatSampler` with the same index layout; `CurriculumGRPOTrainer` wires the three in and adds
the state to every training log (so to metrics.jsonl):

    curriculum/active_level, curriculum/share/level_<L>, curriculum/pass_rate/level_<L>,
    curriculum/zero_variance, curriculum/skipped

How far ahead the sampler runs: it draws a generation batch's prompts when the dataloader asks for
its first index, and accelerate's dataloader fetches one batch ahead of training. With
`steps_per_generation x num_iterations` = 1 (TRL's default) a batch is therefore chosen before the
rewards of the batch before it are in: each draw sees every group but the latest batch's.
One process only: every process would observe only its own slice of the groups, and the samplers,
which must agree on every index, would drift apart.
"""

from __future__ import annotations

import functools
import json
import random
from collections import Counter, deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch.utils.data import Sampler
from transformers import TrainerCallback
from trl import GRPOTrainer
from trl.trainer.utils import RepeatSampler

from r1kit.errors import R1kitError
from r1kit.train.common import checkpoint_dir, console_line

STATE_FILE = "curriculum.json"  # in each checkpoint, so a resumed run keeps its level and history


class Curriculum:
    """The live state: each problem's last group pass rate, each level's rolling pass rate, the
    active level, and the counts since the last log. Rows are dataset indices; `ids` and `levels`
    are the dataset's `id` and `level` columns. `settings`: a grpo stage's `curriculum:` block,
    `r1kit.recipe.CurriculumSpec` (levels, start, promote_at, window, lower_share, keep_zero_variance)."""

    def __init__(self, ids: list[str], levels: list[int], settings: Any, *, group_size: int,
                 seed: int = 0, say: Callable[[str], None] | None = None):
        self.settings, self.group_size, self.say = settings, group_size, say or console_line
        self.ids = list(ids)
        self.levels = list(settings.levels or sorted(set(levels)))
        self.rows = {level: [i for i, lv in enumerate(levels) if lv == level] for level in self.levels}
        empty = [level for level, rows in self.rows.items() if not rows]
        if empty:
            raise R1kitError(f"curriculum level(s) {empty} have no rows in the stage's data; "
                             "add them to data.levels or raise data.count")
        self.active = self.levels.index(settings.start) if settings.start is not None else 0
        self.rng = random.Random(seed)
        self.order = {level: [] for level in self.levels}  # each level's rows, walked in a shuffled cycle
        self.last: dict[str, float] = {}  # problem id -> pass rate of its last group
        self.recent = {level: deque(maxlen=settings.window) for level in self.levels}
        self.counts: Counter = Counter()  # since the last log: groups per level, zero-variance, skipped

    @property
    def level(self) -> int:
        return self.levels[self.active]

    # -------------------------------------------------------------- drawing

    def draw(self, n: int) -> list[int]:
        """`n` dataset rows for the next generation batch: about `lower_share` of them from the levels
        below the active one, the rest from the active level."""
        lower = self.levels[:self.active]
        n_lower = round(n * self.settings.lower_share) if lower else 0
        per_level = Counter(self.rng.choice(lower) for _ in range(n_lower))
        per_level[self.level] += n - n_lower
        return [row for level in self.levels if per_level[level] for row in self._take(level, per_level[level])]

    def _take(self, level: int, k: int) -> list[int]:
        """`k` rows of `level`, eligible ones first (at most one pass over the level's rows); the
        batch must be full, so skipped rows fill what eligible ones cannot."""
        taken, passed = [], []
        for _ in range(len(self.rows[level])):
            if len(taken) == k:
                break
            row = self._next(level)
            (taken if self.eligible(row) else passed).append(row)
        self.counts["considered"] += len(taken) + len(passed)
        filled = passed[:k - len(taken)]
        self.counts["skipped"] += len(passed) - len(filled)
        taken += filled
        while len(taken) < k:  # fewer rows in the level than slots: some prompts twice
            taken.append(self._next(level))
        return taken

    def _next(self, level: int) -> int:
        if not self.order[level]:
            self.order[level] = self.rng.sample(self.rows[level], len(self.rows[level]))
        return self.order[level].pop()

    def eligible(self, row: int) -> bool:
        rate = self.last.get(self.ids[row])
        return rate is None or 0 < rate < 1 or self.rng.random() < self.settings.keep_zero_variance

    # -------------------------------------------------------------- observing

    def observe(self, ids: list[str], levels: list[int], scores: list[float], step: int | None = None) -> None:
        """The accuracy scores of one batch of completions, groups of `group_size` consecutive
        completions of one prompt (TRL's layout)."""
        g = self.group_size
        for start in range(0, len(scores), g):
            rate = sum(s >= 1.0 for s in scores[start:start + g]) / len(scores[start:start + g])
            self.last[ids[start]] = rate
            level = levels[start]
            if level in self.recent:
                self.recent[level].append(rate)
            self.counts[("groups", level)] += 1
            self.counts["groups"] += 1
            self.counts["zero_variance"] += rate in (0.0, 1.0)
        self._maybe_promote(step)

    def pass_rate(self, level: int) -> float | None:
        recent = self.recent[level]
        return sum(recent) / len(recent) if recent else None

    def _maybe_promote(self, step: int | None) -> None:
        recent, rate = self.recent[self.level], self.pass_rate(self.level)
        if self.active + 1 < len(self.levels) and len(recent) == recent.maxlen and rate >= self.settings.promote_at:
            old = self.level
            self.active += 1
            at = f", step {step}" if step is not None else ""
            self.say(f"curriculum{at}: level {old} passed {rate:.0%} of its last {len(recent)} groups "
                     f"(promote_at {self.settings.promote_at:.0%}); level {self.level} is now active")

    # -------------------------------------------------------------- logging and resuming

    def report(self) -> dict[str, float]:
        """The log keys for the period since the last report (then the counts start again)."""
        out: dict[str, float] = {"curriculum/active_level": self.level}
        groups = self.counts["groups"]
        for level in self.levels:
            if groups:
                out[f"curriculum/share/level_{level}"] = self.counts[("groups", level)] / groups
            if (rate := self.pass_rate(level)) is not None:
                out[f"curriculum/pass_rate/level_{level}"] = rate
        if groups:
            out["curriculum/zero_variance"] = self.counts["zero_variance"] / groups
        if self.counts["considered"]:
            out["curriculum/skipped"] = self.counts["skipped"] / self.counts["considered"]
        self.counts.clear()
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"level": self.level, "last": self.last, "recent": {str(lv): list(r) for lv, r in self.recent.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.active = self.levels.index(state["level"])
        self.last = dict(state["last"])
        for level, rates in state["recent"].items():
            self.recent[int(level)].extend(rates)


def observed(reward: Callable[..., list[float]], curriculum: Curriculum) -> Callable[..., list[float]]:
    """`reward` (the accuracy reward) that also hands its scores to the curriculum: TRL computes
    them once, and the curriculum reads them rather than scoring again. Same name, so TRL's
    `rewards/<name>/mean` keys do not change."""

    @functools.wraps(reward)
    def wrapper(completions, **kwargs):
        scores = reward(completions, **kwargs)
        state = kwargs.get("trainer_state")
        step = state.global_step + 1 if state else None  # the step these completions train
        curriculum.observe(kwargs["id"], kwargs["level"], scores, step=step)
        return scores

    return wrapper


class CurriculumSampler(Sampler):
    """TRL's `RepeatSampler` layout (each prompt `mini_repeat_count` times in a row, each batch of
    `batch_size` prompts `repeat_count` times) over prompts the curriculum draws lazily, one batch
    at a time, so each draw reads the live state. As many batches an epoch as TRL's sampler."""

    def __init__(self, curriculum: Curriculum, num_samples: int, *, mini_repeat_count: int, batch_size: int,
                 repeat_count: int):
        self.curriculum, self.num_samples = curriculum, num_samples
        self.mini_repeat_count, self.batch_size, self.repeat_count = mini_repeat_count, batch_size, repeat_count

    def __iter__(self):
        for _ in range(self.num_samples // self.batch_size):
            chunk = self.curriculum.draw(self.batch_size)
            layout = RepeatSampler(chunk, mini_repeat_count=self.mini_repeat_count, batch_size=self.batch_size,
                                   repeat_count=self.repeat_count, shuffle=False)
            yield from (chunk[position] for position in layout)

    def __len__(self) -> int:
        return (self.num_samples // self.batch_size) * self.batch_size * self.mini_repeat_count * self.repeat_count


class _SaveState(TrainerCallback):
    def __init__(self, curriculum: Curriculum):
        self.curriculum = curriculum

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            path = checkpoint_dir(args, state) / STATE_FILE
            path.write_text(json.dumps(self.curriculum.state_dict()))


class CurriculumGRPOTrainer(GRPOTrainer):
    """GRPOTrainer whose prompts the curriculum chooses. `reward_funcs[accuracy]` is the accuracy
    reward, which the curriculum observes."""

    def __init__(self, *, settings, accuracy: int, args, train_dataset, reward_funcs,
                 say: Callable[[str], None] | None = None, **kwargs):
        if args.world_size > 1:
            raise R1kitError(f"curriculum: runs in one process only, not {args.world_size} (each process would "
                             "see only its own groups); remove the curriculum block or launch one process")
        missing = [c for c in ("id", "level") if c not in train_dataset.column_names]
        if missing:
            raise R1kitError(f"curriculum: the training data needs the columns id and level; missing {missing}")
        self.curriculum = Curriculum(train_dataset["id"], train_dataset["level"], settings,
                                     group_size=args.num_generations, seed=args.seed, say=say)
        reward_funcs = list(reward_funcs)
        reward_funcs[accuracy] = observed(reward_funcs[accuracy], self.curriculum)
        super().__init__(args=args, train_dataset=train_dataset, reward_funcs=reward_funcs, **kwargs)
        self.add_callback(_SaveState(self.curriculum))

    def _get_train_sampler(self, dataset=None) -> Sampler:
        dataset = self.train_dataset if dataset is None else dataset
        return CurriculumSampler(self.curriculum, len(dataset), mini_repeat_count=self.num_generations,
                                 batch_size=self.args.generation_batch_size // self.num_generations,
                                 repeat_count=self.num_iterations * self.args.steps_per_generation)

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs:  # training logs, not the final summary
            logs.update(self.curriculum.report())
        super().log(logs, start_time)

    def train(self, resume_from_checkpoint=None, **kwargs):
        if isinstance(resume_from_checkpoint, (str, Path)) and (Path(resume_from_checkpoint) / STATE_FILE).is_file():
            self.curriculum.load_state_dict(json.loads((Path(resume_from_checkpoint) / STATE_FILE).read_text()))
        return super().train(resume_from_checkpoint=resume_from_checkpoint, **kwargs)

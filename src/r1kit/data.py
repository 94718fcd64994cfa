"""Datasets: seeded generation, train/test splits with no shared question, HF `datasets` and JSONL."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from r1kit import tasks
from r1kit.errors import R1kitError
from r1kit.files import atomic_dir
from r1kit.render import check_style, render
from r1kit.problem import Problem, normalize_question

COLUMNS = ("id", "task", "level", "question", "prompt", "completion", "answer", "steps", "metadata")
TEST_SEED_OFFSET = 1_000_003  # test problems come from their own seed stream
TRACE_SEED_OFFSET = 2_000_003  # which train rows `build(traces=…)` renders as traces: a stream of its own
DATA_DIR = "data"  # where a sharded build keeps its Parquet shards (the Hugging Face layout)
MAX_LEVEL = 10_000  # far above any task's levels; bounds what "1-99999999999" would allocate


def parse_levels(spec: str | int | list[int]) -> list[int]:
    """`"1-3"` → [1, 2, 3]; `"1,4"` → [1, 4]; `2` → [2]. Levels above MAX_LEVEL are refused before
    a range is expanded; the task then checks the levels it has."""
    if isinstance(spec, int):
        spec = [spec]
    bounds: list[tuple[int, int]] = []
    try:
        if isinstance(spec, list):
            bounds = [(int(level), int(level)) for level in spec]
        else:
            for part in str(spec).split(","):
                low, dash, high = part.strip().partition("-")
                bounds.append((int(low), int(high if dash else low)))
    except ValueError:
        raise R1kitError(f"bad levels {spec!r}: write them like 1-3 or 1,2,4") from None
    if any(level > MAX_LEVEL for pair in bounds for level in pair):
        raise R1kitError(f"bad levels {spec!r}: levels go up to {MAX_LEVEL:,} at most "
                         "(`r1kit tasks` lists each task's levels)")
    levels = sorted({level for low, high in bounds for level in range(low, high + 1)})
    if not levels:
        raise R1kitError(f"bad levels {spec!r}: no level in it")
    return levels


def per_level(count: int, levels: list[int], shares: dict[int, float] | None = None) -> dict[int, int]:
    """Split `count` as evenly as possible; earlier levels take the remainder. With `shares`
    (level → share of `count`, `check_shares`), the named levels take their shares and the others
    split the rest evenly; the counts always add up to `count`."""
    if not shares:
        base, extra = divmod(count, len(levels))
        return {level: base + (i < extra) for i, level in enumerate(levels)}
    check_shares(levels, shares)
    others = [level for level in levels if level not in shares]
    quotas = {**{level: count * shares[level] for level in levels if level in shares},
              **({"rest": count * (1 - sum(shares.values()))} if others else {})}
    counts = apportion(count, quotas)
    rest = per_level(counts.pop("rest"), others) if others else {}
    return {level: counts[level] if level in shares else rest[level] for level in levels}


def apportion(count: int, quotas: dict[Any, float]) -> dict[Any, int]:
    """Whole counts adding up to `count`: each quota rounded down, then one more for the largest
    remainders (ties to the earlier key), so the same quotas always give the same counts."""
    counts = {key: int(quota + 1e-9) for key, quota in quotas.items()}  # 0.29 * 100 is 28.999…: 29
    by_remainder = sorted(quotas, key=lambda key: -(quotas[key] - counts[key]))  # stable: ties keep their order
    for key in by_remainder[:count - sum(counts.values())]:
        counts[key] += 1
    return counts


def check_shares(levels: list[int], shares: dict[int, float]) -> None:
    """Each named level is one of `levels` with a share in (0, 1); the shares leave something for
    the levels not named, or add up to 1 when every level is named."""
    outside = [level for level in shares if level not in levels]
    if outside:
        raise R1kitError(f"shares name level(s) {outside} that are not in levels {levels}")
    bad = {level: share for level, share in shares.items() if not 0 < share < 1}
    if bad:
        raise R1kitError(f"each share must be above 0 and below 1, got {bad}")
    total = sum(shares.values())
    if len(shares) == len(levels) and abs(total - 1) > 1e-6:
        raise R1kitError(f"shares name every level, so they must add up to 1, got {total:g}")
    if len(shares) < len(levels) and total >= 1:
        raise R1kitError(f"shares add up to {total:g}, leaving nothing for levels "
                         f"{[level for level in levels if level not in shares]}; make them add up to less than 1")


def generate(task_name: str | tasks.Task, levels: list[int], count: int, seed: int,
             exclude: set[str] = frozenset(), *, shares: dict[int, float] | None = None,
             **task_options: Any) -> list[Problem]:
    """`count` problems spread over `levels` (evenly, or by `shares`), none whose normalized
    question is in `exclude`. `task_name`: a name (built with `task_options`) or a configured
    task (a recipe's, with its own levels)."""
    task = tasks.get(task_name, **task_options)
    for level in levels:
        task.check_level(level)
    problems: list[Problem] = []
    for level, n in per_level(count, levels, shares).items():
        want = n
        while True:  # `generate` is prefix-stable, so asking for more only appends
            drawn = task.generate(want, seed=seed, level=level)
            kept = [p for p in drawn if normalize_question(p.question) not in exclude]
            if len(kept) >= n:
                break
            # Ask for exactly the shortfall: a finite pool (a jsonl file) is then never asked for
            # more than it holds while the request can be met.
            want += n - len(kept)
        problems.extend(kept[:n])
    return problems


def to_row(problem: Problem, style: str, *, conversational: bool = False) -> dict[str, Any]:
    prompt, completion = render(problem, style, tasks.get(problem.task))
    return {
        "id": problem.id,
        "task": problem.task,
        "level": problem.level,
        "question": problem.question,
        "prompt": [{"role": "user", "content": prompt}] if conversational else prompt,
        "completion": [{"role": "assistant", "content": completion}] if conversational else completion,
        "answer": problem.answer,
        "steps": [step.text() for step in problem.steps],
        "metadata": json.dumps(problem.metadata, sort_keys=True),
    }


def trace_rows(n: int, share: float, seed: int) -> set[int]:
    """The indices, of `n` rows, rendered as traces for a `share` of them: exactly
    `round(n * share)`, drawn by `seed` (the same rows on every machine)."""
    if not 0 <= share < 1:
        raise R1kitError(f"the share of trace rows must be at least 0 and below 1, got {share}")
    return set(random.Random(seed + TRACE_SEED_OFFSET).sample(range(n), round(n * share))) if share else set()


def build(task_name: str | tasks.Task, levels: list[int], count: int, *, style: str, seed: int = 0,
          test_fraction: float = 0.1, conversational: bool = False, traces: float = 0.0,
          trace_style: str | None = None, shares: dict[int, float] | None = None, **task_options: Any):
    """A `DatasetDict` with `train` and `test`; no test question appears in train. `traces`: the
    share of train rows rendered in `trace_style` instead of `style` (a pretraining mix of
    answer-only rows and worked solutions); test rows are all in `style`. `task_name` and
    `shares` as in `generate`, for each split."""
    from datasets import Dataset, DatasetDict

    check_style(style)
    if traces:
        if trace_style is None:
            raise R1kitError("a share of trace rows needs the trace_style to render them in")
        check_style(trace_style)
    if count < 2:
        raise R1kitError(f"count must be at least 2 (one train and one test row), got {count}")
    if not 0 < test_fraction < 1:
        raise R1kitError(f"test fraction must be between 0 and 1, got {test_fraction}")
    n_test = max(1, round(count * test_fraction))
    task = tasks.get(task_name, **task_options)
    test = generate(task, levels, n_test, seed + TEST_SEED_OFFSET, shares=shares)
    test_questions = {normalize_question(p.question) for p in test}
    train = generate(task, levels, count - n_test, seed, exclude=test_questions, shares=shares)
    chosen = trace_rows(len(train), traces, seed)
    train_rows = [to_row(p, trace_style if i in chosen else style, conversational=conversational)
                  for i, p in enumerate(train)]
    test_rows = [to_row(p, style, conversational=conversational) for p in test]
    return DatasetDict(train=Dataset.from_list(train_rows), test=Dataset.from_list(test_rows))


def save(dataset_dict, out: str | Path, *, jsonl: bool = False) -> Path:
    """Write atomically: into a temporary sibling directory, then rename into place."""
    with atomic_dir(out) as tmp:
        dataset_dict.save_to_disk(str(tmp / "hf"))
        if jsonl:
            for split, dataset in dataset_dict.items():
                dataset.to_json(str(tmp / f"{split}.jsonl"), lines=True, force_ascii=False)
    return Path(out)


def load(path: str | Path):
    """Load what `save` wrote (the HF copy), or the Parquet shards of `r1kit.shards.build`."""
    from datasets import load_dataset, load_from_disk

    path = Path(path)
    if files := data_files(path):
        return load_dataset("parquet", data_files=files)
    target = path / "hf" if (path / "hf").exists() else path
    if not target.exists():
        raise R1kitError(f"no dataset at {path}; build one with `r1kit data build --out {path}`")
    return load_from_disk(str(target))


def data_files(path: str | Path) -> dict[str, list[str]] | None:
    """`{split: [shard paths]}` for a sharded build at `path` (`r1kit.shards`), or None if it is not one."""
    directory = Path(path) / DATA_DIR
    files = {split: sorted(str(p) for p in directory.glob(f"{split}-*-of-*.parquet")) for split in ("train", "test")}
    return {split: paths for split, paths in files.items() if paths} or None

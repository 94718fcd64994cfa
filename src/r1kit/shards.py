"""Datasets at scale: generate in parallel, stream into sharded Parquet, in bounded memory.

The rows are those of `r1kit.data.build` (same seed, same problems, same order); only the way
they are made and stored differs:

- Work is cut into chunks of `chunk_size` consecutive draw indices of one level. A chunk's
  contents depend only on (task, options, seed, level, chunk index), never on the number of
  workers; chunks are made by a process pool and consumed strictly in order, at most
  `2 * workers` in flight, so rows are written and dropped as they come. Memory: the parent
  holds those chunks, one row group and the question keys below; each worker one chunk.
- Deduplication is exact per level (as in `Task.generate`) and no test question appears in
  train: questions are reduced to a 64-bit hash of their normalized text (see `question_key`),
  and the keys seen are kept in `KeySet`, a flat numpy table of at most 32 bytes per row of the
  largest level (the test keys are in every level's table, so train never repeats them).
  Exact dedup of N rows needs Ω(N) state; this keeps that state ~100x smaller than a row, so
  2M rows need ≤ 64 MB of keys where the in-memory build needs ~5 GB. Two different questions
  whose hashes collide (chance ≈ N²/2⁶⁵, 1e-7 at 2M rows) count as one: a distinct problem is
  skipped, never a duplicate kept, and the same one on every run.
- A level with fewer distinct problems than asked is an error, found within `Task.generate`'s
  draw budget or earlier, once a chunk's yield of new problems shows the rest cannot suffice.
- Shards are `data/{split}-{i:05d}-of-{n:05d}.parquet` (the Hugging Face layout), written with
  fixed row groups and fixed writer settings, so the bytes are the same for any `workers` and
  any `chunk_size`, into a temporary directory renamed into place.

Workers are spawned processes: a script that calls `build` with `workers > 1` must do so under
`if __name__ == "__main__":`, as with any process pool.
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from r1kit import tasks
from r1kit.data import DATA_DIR, TEST_SEED_OFFSET, per_level, to_row
from r1kit.errors import R1kitError
from r1kit.files import atomic_dir
from r1kit.render import check_style
from r1kit.problem import normalize_question, problem_seed

CHUNK_SIZE = 2048  # draws per unit of work: big enough to amortize pickling, small enough to stay bounded
ROW_GROUP_ROWS = 8192  # fixed, so that row-group boundaries (and bytes) depend on the rows alone
SHARD_ROWS = 500_000
PARQUET_OPTIONS = {"compression": "zstd", "compression_level": 3, "use_dictionary": True, "write_statistics": True}


def schema(conversational: bool = False) -> pa.Schema:
    """The columns of `r1kit.data.to_row` as Arrow types."""
    text = pa.string()
    if conversational:
        text = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
    return pa.schema([("id", pa.string()), ("task", pa.string()), ("level", pa.int64()),
                      ("question", pa.string()), ("prompt", text), ("completion", text),
                      ("answer", pa.string()), ("steps", pa.list_(pa.string())), ("metadata", pa.string())])


def question_key(question: str) -> int:
    """A 64-bit key of the normalized question, the same in every process (unlike `hash`); never 0."""
    digest = hashlib.blake2b(normalize_question(question).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") or 1


class KeySet:
    """A set of nonzero 64-bit keys in one flat numpy table (open addressing, linear probing,
    at most half full): 8 bytes a slot, 16-32 bytes a key, and no Python object per key."""

    def __init__(self, capacity: int):
        size = 1 << max(10, (2 * capacity - 1).bit_length())
        self.table = np.zeros(size, dtype=np.uint64)
        self.mask = np.uint64(size - 1)
        self.capacity, self.size = capacity, 0

    def add(self, keys: np.ndarray) -> np.ndarray:
        """Insert `keys`; True where a key was not there yet (nor earlier in `keys`)."""
        keys = np.asarray(keys, dtype=np.uint64)
        new = np.zeros(len(keys), dtype=bool)
        slots = keys & self.mask
        pending = np.arange(len(keys))
        while pending.size:
            current = self.table[slots[pending]]
            found = current == keys[pending]
            empty = np.flatnonzero(current == 0)
            # Pending keys may race for one empty slot: the first takes it, the others look again
            # (and find it taken by their own key, if they were a duplicate of the winner).
            claimed, first = np.unique(slots[pending[empty]], return_index=True)
            winners = pending[empty[first]]
            self.table[claimed] = keys[winners]
            new[winners] = True
            settled = found
            settled[empty[first]] = True
            moving = pending[~settled & (current != 0)]
            slots[moving] = (slots[moving] + np.uint64(1)) & self.mask
            pending = pending[~settled]
        self.size += int(new.sum())
        if self.size > self.capacity:
            raise RuntimeError(f"KeySet over capacity ({self.size} > {self.capacity})")
        return new


# ---- workers: one chunk of draws → its rows as an Arrow table ---------------------------------

@dataclass(frozen=True)
class Chunk:
    task: str
    options: tuple[tuple[str, Any], ...]
    seed: int
    level: int
    index: int
    size: int
    style: str
    conversational: bool


_TASKS: dict[tuple[str, str], tasks.Task] = {}  # one task per worker process


def make_chunk(chunk: Chunk) -> tuple[np.ndarray, pa.Table]:
    """Draws `index * size ... (index + 1) * size - 1` of one level, first occurrences within the
    chunk only (later ones could never be kept), as (question keys, rows)."""
    key = (chunk.task, repr(chunk.options))  # option values (level tables) need not be hashable
    if key not in _TASKS:
        _TASKS[key] = tasks.get(chunk.task, **dict(chunk.options))
    task = _TASKS[key]
    start = chunk.index * chunk.size
    keys: dict[int, None] = {}
    rows = []
    for i in range(start, start + chunk.size):
        problem = task.make(problem_seed(chunk.seed, chunk.level, i), chunk.level)
        k = question_key(problem.question)
        if k not in keys:
            keys[k] = None
            rows.append(to_row(problem, chunk.style, conversational=chunk.conversational))
    return np.fromiter(keys, dtype=np.uint64, count=len(keys)), pa.Table.from_pylist(rows, schema=schema(chunk.conversational))


def ordered_map(fn: Callable, items: Iterable, pool: ProcessPoolExecutor | None, window: int) -> Iterator:
    """`map(fn, items)` in order, at most `window` results in flight in `pool` (`Pool.imap`
    would drain an endless `items` eagerly); in this process when `pool` is None."""
    if pool is None:
        yield from map(fn, items)
        return
    items, futures = iter(items), deque()
    try:
        for item in items:
            futures.append(pool.submit(fn, item))
            if len(futures) >= window:
                yield futures.popleft().result()
        while futures:
            yield futures.popleft().result()
    finally:  # stopped early (enough rows, or an error): drop what is still queued
        for future in futures:
            future.cancel()


def worker_pool(workers: int) -> ProcessPoolExecutor | None:
    """`workers` spawned processes (not forked: the parent holds pyarrow threads, which fork
    does not copy safely); none for one worker, which works in this process."""
    if workers == 1:
        return None
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=die_with_parent, initargs=(os.getpid(),))


def die_with_parent(parent: int) -> None:
    """A worker's initializer: it must not outlive a parent killed by SIGKILL (which runs no
    cleanup), or it would keep working, and keep the resource tracker alive, forever. On Linux
    the kernel kills it with its parent; elsewhere a thread watches for the parent to go."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    else:
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    if os.getppid() != parent:  # the parent died before the watch began
        os._exit(1)


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(1)


# ---- the parent: dedup in order, write fixed row groups ---------------------------------------

@dataclass
class ShardWriter:
    """Writes one split as `{split}-{i:05d}-of-{n:05d}.parquet`, `shard_rows` rows a shard, in
    row groups of exactly `row_group_rows` rows (the last one of a shard may be shorter)."""

    directory: Path
    split: str
    total: int
    schema: pa.Schema
    shard_rows: int = SHARD_ROWS
    row_group_rows: int = ROW_GROUP_ROWS
    written: int = 0
    _buffer: list[pa.Table] = field(default_factory=list)
    _buffered: int = 0
    _writer: pq.ParquetWriter | None = None
    _in_shard: int = 0
    _shard: int = 0

    @property
    def shards(self) -> int:
        return max(1, math.ceil(self.total / self.shard_rows))

    def write(self, table: pa.Table) -> None:
        self._buffer.append(table)
        self._buffered += len(table)
        while self._buffered >= self._next_group():
            self._flush(self._next_group())

    def close(self) -> None:
        while self._buffered:
            self._flush(min(self._buffered, self._next_group()))
        if self._writer is not None:
            self._writer.close()
        if self.written != self.total:
            raise RuntimeError(f"{self.split}: wrote {self.written} rows, expected {self.total}")

    def _next_group(self) -> int:
        return min(self.row_group_rows, self.shard_rows - self._in_shard)

    def _flush(self, rows: int) -> None:
        buffered = pa.concat_tables(self._buffer)
        # One contiguous array per column, so that page boundaries depend on the rows alone.
        group = buffered.slice(0, rows).combine_chunks()
        rest = buffered.slice(rows)
        self._buffer, self._buffered = ([rest] if len(rest) else []), len(rest)
        if self._writer is None:
            name = f"{self.split}-{self._shard:05d}-of-{self.shards:05d}.parquet"
            self._writer = pq.ParquetWriter(self.directory / name, self.schema, **PARQUET_OPTIONS)
        self._writer.write_table(group, row_group_size=rows)
        self.written += rows
        self._in_shard += rows
        if self._in_shard == self.shard_rows:
            self._writer.close()
            self._writer, self._in_shard, self._shard = None, 0, self._shard + 1


@dataclass
class Plan:
    """What to generate (the shared part of every `Chunk`) and the pool that makes it."""

    task: str
    options: tuple[tuple[str, Any], ...]
    style: str
    conversational: bool
    chunk_size: int
    max_attempts: int
    pool: ProcessPoolExecutor | None
    window: int

    def chunks(self, seed: int, level: int) -> Iterator[tuple[np.ndarray, pa.Table]]:
        """The chunks of one level in draw order, made `window` at a time."""
        def specs() -> Iterator[Chunk]:
            index = 0
            while True:
                yield Chunk(self.task, self.options, seed, level, index, self.chunk_size, self.style, self.conversational)
                index += 1

        return ordered_map(make_chunk, specs(), self.pool, self.window)


def write_split(plan: Plan, writer: ShardWriter, seed: int, quotas: dict[int, int], exclude: np.ndarray,
                progress: Callable[[int], None] | None, *, keep_keys: bool = False) -> np.ndarray:
    """Write `quotas[level]` rows per level, in draw order: the first draws whose question is new
    to the level and not in `exclude` (exactly what `data.generate` keeps), or an error if that
    many cannot be found within `Task.generate`'s draw budget. Returns the keys written if asked."""
    written = []
    for level, quota in quotas.items():
        if quota == 0:
            continue
        # The last chunk may insert up to `chunk_size` keys beyond the quota.
        seen = KeySet(len(exclude) + quota + plan.chunk_size)
        seen.add(exclude)
        budget = quota * plan.max_attempts + 100
        kept = drawn = 0
        chunks = plan.chunks(seed, level)
        try:
            for keys, table in chunks:
                is_new = seen.add(keys)
                new = np.flatnonzero(is_new)[: quota - kept]
                writer.write(table.take(new))
                if keep_keys:
                    written.append(keys[new])
                kept += len(new)
                drawn += plan.chunk_size
                if progress is not None:
                    progress(len(new))
                if kept == quota:
                    break
                # The chance that a draw is new only falls as problems are found, so this chunk's
                # yield (+1, x4 for luck) bounds what the rest of the budget can still find: a
                # level that runs dry fails after a few chunks, not after the whole budget.
                hope = 4 * (int(is_new.sum()) + 1) * (budget - drawn) / plan.chunk_size
                if drawn >= budget or kept + hope < quota:
                    raise R1kitError(f"{plan.task} level {level} has fewer than {quota} distinct problems "
                                     f"(found {kept} in {drawn:,} draws); ask for fewer or add levels")
        finally:
            chunks.close()  # cancel the chunks still queued
    return np.unique(np.concatenate(written)) if written else np.zeros(0, dtype=np.uint64)


@dataclass
class Summary:
    path: Path
    train_rows: int
    test_rows: int
    train_shards: int
    test_shards: int


def build(task_name: str, levels: list[int], count: int, out: str | Path, *, style: str, seed: int = 0,
          test_fraction: float = 0.1, conversational: bool = False, workers: int = 1,
          chunk_size: int = CHUNK_SIZE, shard_rows: int = SHARD_ROWS, row_group_rows: int = ROW_GROUP_ROWS,
          progress: Callable[[int], None] | None = None, **task_options: Any) -> Summary:
    """Stream `count` rows (train + test, the rows of `data.build`) into Parquet shards under
    `out/data/`, generated by `workers` processes in memory bounded independently of `count`
    (but for the 8-byte question keys, see the module docstring)."""
    check_style(style)
    if workers < 1:
        raise R1kitError(f"--workers must be at least 1, got {workers}")
    if count < 2:
        raise R1kitError(f"count must be at least 2 (one train and one test row), got {count}")
    if not 0 < test_fraction < 1:
        raise R1kitError(f"test fraction must be between 0 and 1, got {test_fraction}")
    if chunk_size < 1 or shard_rows < 1 or row_group_rows < 1:
        raise R1kitError("chunk_size, shard_rows and row_group_rows must be at least 1")
    task = tasks.get(task_name, **task_options)
    if type(task).generate is not tasks.Task.generate:  # chunks need problem i = make(problem_seed(i))
        raise R1kitError(f"task {task_name!r} draws its problems as a whole and cannot be built in chunks; "
                         "build it in memory (without --workers or --format parquet)")
    for level in levels:
        task.check_level(level)
    out = Path(out)
    n_test = max(1, round(count * test_fraction))
    pool = worker_pool(workers)
    try:
        with atomic_dir(out) as tmp:
            plan = Plan(task_name, tuple(sorted(task_options.items())), style, conversational, chunk_size,
                        task.max_attempts_per_problem, pool, 2 * workers)
            (tmp / DATA_DIR).mkdir()
            writers = {split: ShardWriter(tmp / DATA_DIR, split, total, schema(conversational), shard_rows,
                                          row_group_rows)
                       for split, total in (("train", count - n_test), ("test", n_test))}
            test_keys = write_split(plan, writers["test"], seed + TEST_SEED_OFFSET, per_level(n_test, levels),
                                    np.zeros(0, dtype=np.uint64), progress, keep_keys=True)
            writers["test"].close()
            write_split(plan, writers["train"], seed, per_level(count - n_test, levels), test_keys, progress)
            writers["train"].close()
            info = {"task": task_name, "task_options": task_options, "levels": levels, "count": count, "seed": seed,
                    "style": style, "test_fraction": test_fraction, "conversational": conversational,
                    "splits": {split: {"rows": w.total, "shards": w.shards} for split, w in writers.items()}}
            (tmp / "info.json").write_text(json.dumps(info, indent=2, sort_keys=True, default=repr) + "\n")
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return Summary(out, writers["train"].total, writers["test"].total, writers["train"].shards, writers["test"].shards)


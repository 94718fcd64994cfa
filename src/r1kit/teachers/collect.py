"""Trace collection with rejection sampling: a teacher answers generated problems and the one
judge (the task's scorer + `r1kit.verify.check_steps`) keeps only verified traces.

A sample is accepted when, checked in this order (the first failure is its rejection reason):
  overlong       it is not cut off: fewer than `max_tokens` tokens (when the teacher can count
                 them, `teacher.count_tokens`) and at most MAX_COMPLETION_CHARS characters;
  no_answer      it states an answer (`r1kit.verify.extract_answer`);
  wrong_answer   the task's `score(completion, problem)` says the answer is right;
  false_step     no arithmetic claim in it (`a op b = r`, in symbols or words) is false: a teacher
                 may take its own correct route, so reference steps are not required...
  low_step_score ...unless `min_step_score` > 0 asks for that share of the compiler's steps;
  duplicate      it is not the same (whitespace-normalized) text as a sample kept for the problem.

The output directory is append-only and survives a kill at any moment:

    collect.json    the run's arguments; resuming with other arguments is an error
    traces.jsonl    accepted SFT rows: id, task, level, question, answer, prompt, completion,
                    teacher, sample, step_score
    rejected.jsonl  the first `keep_rejected` rejected samples with their reason, to inspect
    summary.json    per-level counts and the progress record (chunks done, rows they wrote)

Problems go in fixed chunks. A chunk's rows are appended and fsynced, then summary.json is
atomically replaced to count them. On start, rows past the counted ones (a chunk cut short) are
cut off and that chunk is asked again with the same seed, so nothing is lost or written twice.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from r1kit import tasks
from r1kit.data import generate, parse_levels
from r1kit.errors import R1kitError
from r1kit.files import write_json
from r1kit.render import prompt_text
from r1kit.problem import Problem
from r1kit.verify import check_steps, extract_answer

REASONS = ("overlong", "no_answer", "wrong_answer", "false_step", "low_step_score", "missing_step", "duplicate")
MAX_COMPLETION_CHARS = 32_000  # untrusted text: longer than this is overlong, whatever the teacher says
MAX_REJECTED_CHARS = 2_000  # a rejected sample is kept for reading, not for training
FILES = ("collect.json", "traces.jsonl", "rejected.jsonl", "summary.json")

Verdict = tuple[str | None, float]  # (rejection reason or None, step score)


# ---------------------------------------------------------------- bookkeeping


@dataclass
class LevelStats:
    problems: int = 0
    samples: int = 0
    accepted: int = 0
    solved: int = 0  # problems with at least one accepted sample
    rejected: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.accepted / self.samples if self.samples else 0.0

    def add(self, other: LevelStats) -> None:
        self.problems += other.problems
        self.samples += other.samples
        self.accepted += other.accepted
        self.solved += other.solved
        for reason, n in other.rejected.items():
            self.rejected[reason] = self.rejected.get(reason, 0) + n

    def as_dict(self) -> dict[str, Any]:
        rejected = {r: self.rejected[r] for r in REASONS if self.rejected.get(r)}
        return {"problems": self.problems, "samples": self.samples, "accepted": self.accepted,
                "rate": self.rate, "solved": self.solved, "rejected": rejected}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LevelStats:
        return cls(data["problems"], data["samples"], data["accepted"], data["solved"], dict(data["rejected"]))


@dataclass
class CollectSummary:
    """What summary.json holds: counts per level and how far the run got."""

    out: Path
    mode: str  # "collect" or "rewrite"
    teacher: str
    task: str
    chunks: int
    chunks_done: int = 0
    traces_rows: int = 0  # rows of traces.jsonl / rejected.jsonl written by the done chunks
    rejected_rows: int = 0
    tokens: int | None = None  # completion tokens, when the teacher can count them
    levels: dict[int, LevelStats] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return self.chunks_done == self.chunks

    @property
    def total(self) -> LevelStats:
        total = LevelStats()
        for stats in self.levels.values():
            total.add(stats)
        return total

    def as_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "teacher": self.teacher, "task": self.task, "complete": self.complete,
                "chunks": self.chunks, "chunks_done": self.chunks_done, "traces_rows": self.traces_rows,
                "rejected_rows": self.rejected_rows, "tokens": self.tokens, "total": self.total.as_dict(),
                "levels": {str(level): s.as_dict() for level, s in sorted(self.levels.items())}}

    @classmethod
    def from_dict(cls, out: Path, data: dict[str, Any]) -> CollectSummary:
        levels = {int(level): LevelStats.from_dict(s) for level, s in data["levels"].items()}
        return cls(out, data["mode"], data["teacher"], data["task"], data["chunks"], data["chunks_done"],
                   data["traces_rows"], data["rejected_rows"], data["tokens"], levels)


def load_summary(out: str | Path) -> CollectSummary:
    path = Path(out) / "summary.json"
    if not path.is_file():
        raise R1kitError(f"no collection in {out} (no summary.json); run `r1kit distill collect --out {out}` first")
    return CollectSummary.from_dict(Path(out), json.loads(path.read_text()))


# ---------------------------------------------------------------- the judge


def judge_trace(problem: Problem, text: str, *, min_step_score: float = 0.0) -> Verdict:
    """Collection's acceptance rule (see the module docstring); overlong and duplicates are the
    driver's, since they depend on the budget and on the other samples."""
    report = check_steps(text, problem.steps)
    if extract_answer(text) is None:
        return "no_answer", report.score
    if tasks.get(problem.task).score(text, problem) < 1.0:
        return "wrong_answer", report.score
    if report.wrong:
        return "false_step", report.score
    if report.score < min_step_score:
        return "low_step_score", report.score
    return None, report.score


def normalize(text: str) -> str:
    return " ".join(text.split())


# ---------------------------------------------------------------- collection


def collect(teacher, *, task: str | tasks.Task, levels: str | list[int], count: int, samples_per_problem: int,
            out: str | Path, seed: int = 0, max_tokens: int = 256, temperature: float = 0.8,
            min_step_score: float = 0.0, chunk_size: int = 32, keep_rejected: int = 1000,
            shares: dict[int, float] | None = None, progress: Callable[[int], None] | None = None) -> CollectSummary:
    """Ask `teacher` for `samples_per_problem` traces of `count` generated problems (seeded) and
    keep the verified ones in `out/traces.jsonl`. Re-running the same call resumes. `task`: a name
    or a configured task (a recipe's, with its own levels); `shares` as in `data.generate`."""
    if not 0.0 <= min_step_score <= 1.0:
        raise R1kitError(f"min_step_score must be between 0 and 1, got {min_step_score}")
    task = tasks.get(task)
    levels = parse_levels(levels)
    config = {"mode": "collect", "teacher": teacher.name, "style": teacher.style, "task": task.name, "levels": levels,
              "count": count, "samples_per_problem": samples_per_problem, "seed": seed, "max_tokens": max_tokens,
              "temperature": temperature, "min_step_score": min_step_score, "chunk_size": chunk_size,
              **own_levels(task, levels, shares)}
    job = Job(ask=lambda p: prompt_text(p, teacher.style, tasks.get(p.task)),
              judge=lambda p, text: judge_trace(p, text, min_step_score=min_step_score),
              row=lambda p, text: (prompt_text(p, teacher.style, tasks.get(p.task)), text))
    return run_job(teacher, job, config, out, task=task, shares=shares, keep_rejected=keep_rejected,
                   progress=progress)


def own_levels(task: tasks.Task, levels: list[int], shares: dict[int, float] | None) -> dict[str, Any]:
    """What a run's config records of a configured task's own levels and of `shares`, as stored JSON
    reads back; nothing when neither is used, so a stored run of the defaults still resumes."""
    registered = tasks.get(task.name).level_specs
    own = {str(level): task.level_params(level) for level in levels
           if task.level_specs.get(level) != registered.get(level)}
    settings = {"level_params": own} if own else {}
    if shares:
        settings["shares"] = {str(level): share for level, share in shares.items()}
    return json.loads(json.dumps(settings))


@dataclass
class Job:
    """What a kind of run asks, how it judges, and the SFT row a kept sample becomes."""

    ask: Callable[[Problem], str]  # the teacher's prompt (user message text)
    judge: Callable[[Problem, str], Verdict]
    row: Callable[[Problem, str], tuple[str, str]]  # (prompt, completion) of the kept row


def run_job(teacher, job: Job, config: dict[str, Any], out: str | Path, *, task: tasks.Task | None = None,
            shares: dict[int, float] | None = None, keep_rejected: int = 1000,
            progress: Callable[[int], None] | None = None) -> CollectSummary:
    """The resumable driver shared by collection and rewriting (`config` names the run; `task`, when
    given, is the configured task it names)."""
    _check_config(config)
    problems = generate(task or config["task"], config["levels"], config["count"], config["seed"], shares=shares)
    out = Path(out)
    missing = _topmost_missing(out)
    out.mkdir(parents=True, exist_ok=True)
    with _lock(out), _as_found_on_failure(out, missing):
        _write_config(out, config)
        summary = _resume(out, config, teacher.name, len(problems))
        size = config["chunk_size"]
        if progress is not None and summary.chunks_done:
            progress(min(summary.chunks_done * size, len(problems)))
        for index in range(summary.chunks_done, summary.chunks):
            chunk = problems[index * size:(index + 1) * size]
            outputs = _ask(teacher, job, chunk, index, config, progress)
            accepted, rejected = _judge_chunk(teacher, job, chunk, outputs, config, summary)
            rejected = rejected[:max(0, keep_rejected - summary.rejected_rows)]
            append_rows(out / "traces.jsonl", accepted)
            append_rows(out / "rejected.jsonl", rejected)
            summary.traces_rows += len(accepted)
            summary.rejected_rows += len(rejected)
            summary.chunks_done += 1
            write_json(out / "summary.json", summary.as_dict(), durable=True)  # the commit point of this chunk
    return summary


def _check_config(config: dict[str, Any]) -> None:
    for key in ("count", "samples_per_problem", "chunk_size", "max_tokens"):
        if not isinstance(config[key], int) or config[key] < 1:
            raise R1kitError(f"{key} must be a positive integer, got {config[key]!r}")
    if config["temperature"] < 0:
        raise R1kitError(f"temperature must be >= 0, got {config['temperature']}")
    tasks.get(config["task"])  # unknown task → its clear error before anything is written


def _ask(teacher, job: Job, chunk: list[Problem], index: int, config: dict[str, Any],
         progress: Callable[[int], None] | None) -> list[list[str]]:
    reported = 0

    def advance(k: int) -> None:
        nonlocal reported
        reported += k
        if progress is not None:
            progress(k)

    n = config["samples_per_problem"]
    outputs = teacher.generate([job.ask(p) for p in chunk], n=n, max_tokens=config["max_tokens"],
                               temperature=config["temperature"], seed=chunk_seed(config["seed"], index),
                               progress=advance)
    if progress is not None and reported < len(chunk):
        progress(len(chunk) - reported)  # a teacher that does not report progress still moves the bar
    if len(outputs) != len(chunk) or any(len(texts) != n for texts in outputs):
        raise R1kitError(f"teacher {teacher.name} returned {[len(t) for t in outputs]} completions for "
                         f"{len(chunk)} prompts x {n} samples; it must return n completions per prompt")
    return outputs


def chunk_seed(seed: int, index: int) -> int:
    """One sampling seed per (run seed, chunk): a redone chunk draws the same samples."""
    return (seed % 2**31) * 1_000_003 + index


def _judge_chunk(teacher, job: Job, chunk: list[Problem], outputs: list[list[str]], config: dict[str, Any],
                 summary: CollectSummary) -> tuple[list[dict], list[dict]]:
    count_tokens = getattr(teacher, "count_tokens", None)
    accepted, rejected = [], []
    for problem, texts in zip(chunk, outputs):
        stats = LevelStats(problems=1)
        seen: set[str] = set()
        for sample, text in enumerate(texts):
            text = text if isinstance(text, str) else ""
            tokens = count_tokens(text) if count_tokens is not None and len(text) <= MAX_COMPLETION_CHARS else None
            if tokens is not None:
                summary.tokens = (summary.tokens or 0) + tokens
            if len(text) > MAX_COMPLETION_CHARS or (tokens is not None and tokens >= config["max_tokens"]):
                reason, step_score = "overlong", 0.0
            else:
                reason, step_score = job.judge(problem, text)
            if reason is None and normalize(text) in seen:
                reason = "duplicate"
            stats.samples += 1
            if reason is None:
                seen.add(normalize(text))
                stats.accepted += 1
                prompt, completion = job.row(problem, text)
                accepted.append({"id": problem.id, "task": problem.task, "level": problem.level,
                                 "question": problem.question, "answer": problem.answer, "prompt": prompt,
                                 "completion": completion, "teacher": teacher.name, "sample": sample,
                                 "step_score": step_score})
            else:
                stats.rejected[reason] = stats.rejected.get(reason, 0) + 1
                rejected.append({"id": problem.id, "level": problem.level, "sample": sample, "reason": reason,
                                 "completion": text[:MAX_REJECTED_CHARS]})
        stats.solved = int(stats.accepted > 0)
        summary.levels.setdefault(problem.level, LevelStats()).add(stats)
    return accepted, rejected


# ---------------------------------------------------------------- files


def _write_config(out: Path, config: dict[str, Any]) -> None:
    path = out / "collect.json"
    if not path.is_file():
        write_json(path, config, durable=True)
        return
    stored = json.loads(path.read_text())
    changed = [f"{key}: {stored.get(key)!r} -> {config.get(key)!r}"
               for key in sorted(set(stored) | set(config)) if stored.get(key) != config.get(key)]
    if changed:
        raise R1kitError(f"{out} holds a {stored.get('mode', 'collect')} run with other arguments "
                         f"({'; '.join(changed)}); rerun with the same arguments to resume, or use another --out")


def _resume(out: Path, config: dict[str, Any], teacher: str, n_problems: int) -> CollectSummary:
    """The summary of the chunks done so far; rows a killed chunk left behind are cut off."""
    chunks = -(-n_problems // config["chunk_size"])
    path = out / "summary.json"
    if path.is_file():
        summary = CollectSummary.from_dict(out, json.loads(path.read_text()))
    else:
        summary = CollectSummary(out, config["mode"], teacher, config["task"], chunks)
    _truncate_rows(out / "traces.jsonl", summary.traces_rows)
    _truncate_rows(out / "rejected.jsonl", summary.rejected_rows)
    return summary


def _truncate_rows(path: Path, rows: int) -> None:
    """Keep the first `rows` complete lines of `path` (one truncate call: atomic, and idempotent)."""
    if not path.exists():
        if rows:
            raise R1kitError(f"{path} is missing but summary.json counts {rows} rows in it; use a new --out")
        return
    offset = 0
    with path.open("rb") as f:
        for _ in range(rows):
            line = f.readline()
            if not line.endswith(b"\n"):
                raise R1kitError(f"{path} has fewer rows than summary.json counts ({rows}); "
                                 "it was edited, so use a new --out")
            offset += len(line)
    if path.stat().st_size > offset:
        os.truncate(path, offset)


def append_rows(path: Path, rows: list[dict]) -> None:
    """Rows as JSON lines, on disk before it returns (a kill tears at most the last line)."""
    with path.open("a", encoding="utf-8") as f:
        f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        f.flush()
        os.fsync(f.fileno())


@contextlib.contextmanager
def _lock(out: Path) -> Iterator[None]:
    """Two runs appending to one directory would interleave rows; the second one stops instead.
    The lock is on the directory itself, so it leaves no file behind."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks, rely on the user
        yield
        return
    handle = os.open(out, os.O_RDONLY)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise R1kitError(f"another run is writing to {out}; wait for it or use another --out") from None
        yield
    finally:
        os.close(handle)


def _topmost_missing(out: Path) -> Path | None:
    """The outermost directory that `out.mkdir(parents=True)` will create, or None if `out` exists."""
    return next((p for p in [*reversed(out.parents), out] if not p.exists()), None)


@contextlib.contextmanager
def _as_found_on_failure(out: Path, missing: Path | None) -> Iterator[None]:
    """A run that fails before its first chunk is committed (an unreachable teacher, a bad
    model) leaves `out` as it found it: the directories it made removed, and in a directory
    that was there, the files it made. A run with committed chunks keeps them, to resume."""
    before = set() if missing is not None else {p.name for p in out.iterdir()}
    try:
        yield
    except BaseException:
        if not (out / "summary.json").exists():
            if missing is not None:
                shutil.rmtree(missing, ignore_errors=True)
            else:
                for name in set(FILES) - before:
                    (out / name).unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------- reading the traces


def read_traces(out: str | Path) -> list[dict[str, Any]]:
    """The accepted rows of the chunks done (a run still going, or killed, has no half chunk here)."""
    summary = load_summary(out)
    rows: list[dict[str, Any]] = []
    if not summary.traces_rows:
        return rows
    with (Path(out) / "traces.jsonl").open(encoding="utf-8") as f:
        for _, line in zip(range(summary.traces_rows), f):
            rows.append(json.loads(line))
    return rows


def traces_dataset(out: str | Path, *, conversational: bool = False):
    """The accepted traces as a HF `Dataset` of prompt/completion rows for sequence-level
    distillation (SFT); `conversational` gives message lists like `r1kit.data.to_row`."""
    from datasets import Dataset

    rows = read_traces(out)
    if not rows:
        raise R1kitError(f"{out} holds no accepted traces; collect more (more samples, other levels) or check "
                         f"{Path(out) / 'rejected.jsonl'} for why they were rejected")
    if conversational:
        for row in rows:
            row["prompt"] = [{"role": "user", "content": row["prompt"]}]
            row["completion"] = [{"role": "assistant", "content": row["completion"]}]
    return Dataset.from_list(rows)

"""The cost ledger: what every stage attempt really cost, including attempts that were killed.

Each attempt writes `ledger/<stage>-<attempt>.json` at start, every few seconds while it runs,
and at the end, so a run that is interrupted and resumed still accounts for the lost work.
FLOPs are the usual estimates: 6·N·T for training tokens, 2·N·T for generated/scored tokens.

A training attempt that resumes from a checkpoint *carries* the cost of the attempts before it
that the checkpoint holds (saved beside it, `CARRY_FILE`), so a stage's own cost (the work in its
final weights) is the same whether or not it was interrupted: the final attempt plus what it
carried. The every-attempt totals still count all work done, lost work included.

Under several processes every rank writes its own file (`<stage>-<attempt>-rank<r>.json`, one
attempt id shared by the ranks): wall and CPU seconds add up over ranks (device-seconds, waiting
at barriers included: that time is paid for), while tokens are TRL's global counts, metered on
rank 0 only, so tokens and FLOPs are counted once.
"""

from __future__ import annotations

import json
import os
import resource
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from r1kit.files import write_json

HEARTBEAT_S = 1.0  # a killed attempt loses at most this much of its record
CARRY_FILE = "r1kit-cost.json"  # beside each checkpoint: the cost of the work it holds
TRAIN_FLOPS_PER_TOKEN = 6  # per parameter: forward and backward
FORWARD_FLOPS_PER_TOKEN = 2  # per parameter: a token generated or scored
SUMMED = ("wall_s", "cpu_s", "train_tokens", "generated_tokens", "flops", "student_flops")


def rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # not Linux: the process-wide peak is the best we have
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@dataclass
class Attempt:
    stage: str
    kind: str
    attempt: str
    parameters: int = 0
    rank: int = 0  # this process's rank, of `processes`
    processes: int = 1
    status: str = "running"  # running | done | failed (a killed attempt stays "running")
    started: float = field(default_factory=time.time)
    wall_s: float = 0.0
    cpu_s: float = 0.0
    train_tokens: int = 0
    generated_tokens: int = 0  # tokens produced or scored by forward passes only
    teacher_flops: float = 0.0  # another model's work on this stage's behalf (a teacher scoring tokens)
    peak_memory_bytes: int = 0
    gpu_peak_memory_bytes: int = 0
    carried: dict[str, float] = field(default_factory=dict)  # earlier attempts' work that this one resumed from

    @property
    def flops(self) -> float:
        return self.student_flops + self.teacher_flops

    @property
    def student_flops(self) -> float:
        return float(self.parameters * (TRAIN_FLOPS_PER_TOKEN * self.train_tokens
                                        + FORWARD_FLOPS_PER_TOKEN * self.generated_tokens))

    def row(self) -> dict[str, Any]:
        return {**asdict(self), "flops": self.flops, "student_flops": self.student_flops}

    def contributed(self) -> dict[str, float]:
        """This attempt's work plus what it carried: the cost of the weights it holds now."""
        row = self.row()
        return {key: row[key] + self.carried.get(key, 0) for key in SUMMED}


class Meter:
    """`with Meter(run_dir, "sft", "sft") as meter: ...; meter.add(train_tokens=...)`"""

    def __init__(self, run_dir: str | Path, stage: str, kind: str, parameters: int = 0, *,
                 attempt: str | None = None, rank: int = 0, world_size: int = 1):
        self.path_dir = Path(run_dir) / "ledger"
        self.attempt = Attempt(stage=stage, kind=kind, attempt=attempt or new_attempt_id(), parameters=parameters,
                               rank=rank, processes=world_size)
        self._stop = threading.Event()
        self._lock = threading.Lock()

    @property
    def path(self) -> Path:
        rank = f"-rank{self.attempt.rank}" if self.attempt.processes > 1 else ""
        return self.path_dir / f"{self.attempt.stage}-{self.attempt.attempt}{rank}.json"

    def add(self, *, train_tokens: int = 0, generated_tokens: int = 0, teacher_flops: float = 0.0,
            parameters: int | None = None) -> None:
        with self._lock:
            self.attempt.train_tokens += int(train_tokens)
            self.attempt.generated_tokens += int(generated_tokens)
            self.attempt.teacher_flops += float(teacher_flops)
            if parameters:
                self.attempt.parameters = int(parameters)

    def carry(self, carried: dict[str, float]) -> None:
        with self._lock:
            self.attempt.carried = {key: float(carried.get(key, 0)) for key in SUMMED}

    def contributed(self) -> dict[str, float]:
        self._sample()
        with self._lock:
            return self.attempt.contributed()

    def __enter__(self) -> Meter:
        self.path_dir.mkdir(parents=True, exist_ok=True)
        self._wall0, self._cpu0 = time.perf_counter(), time.process_time()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        self._write()
        return self

    def __exit__(self, kind, error, traceback) -> None:
        self._stop.set()
        self._thread.join()
        self.attempt.status = "done" if error is None else "failed"
        self._write()

    def _watch(self) -> None:
        last_write = time.perf_counter()
        while not self._stop.wait(0.25):
            self._sample()
            if time.perf_counter() - last_write > HEARTBEAT_S:
                self._write()
                last_write = time.perf_counter()

    def _sample(self) -> None:
        with self._lock:
            self.attempt.peak_memory_bytes = max(self.attempt.peak_memory_bytes, rss_bytes())
            self.attempt.wall_s = time.perf_counter() - self._wall0
            self.attempt.cpu_s = time.process_time() - self._cpu0
            try:
                import torch

                if torch.cuda.is_available():
                    self.attempt.gpu_peak_memory_bytes = max(self.attempt.gpu_peak_memory_bytes,
                                                             torch.cuda.max_memory_allocated())
            except ImportError:  # pragma: no cover
                pass

    def flush(self) -> None:
        self._write()

    def _write(self) -> None:
        self._sample()
        with self._lock:
            row = self.attempt.row()
        write_json(self.path, row, indent=1)


def new_attempt_id() -> str:
    return uuid.uuid4().hex[:8]


def read(run_dir: str | Path) -> dict[str, Any]:
    """Every attempt's row, per-stage sums, and totals: `all` counts every attempt ever made
    (killed and failed ones too); `final` counts the work in each stage's result: its successful
    attempt with what that attempt carried from the checkpoint it resumed."""
    rows = []
    for path in sorted((Path(run_dir) / "ledger").glob("*.json")):
        try:
            rows.append(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError):
            continue
    rows.sort(key=lambda r: r["started"])
    stages: dict[str, dict[str, Any]] = {}
    for row in rows:
        stage = stages.setdefault(row["stage"], {"stage": row["stage"], "kind": row["kind"], "attempts": 0,
                                                 "peak_memory_bytes": 0, **{k: 0 for k in SUMMED}})
        stage["attempts"] += row.get("rank", 0) == 0  # one attempt, however many processes ran it
        stage["peak_memory_bytes"] = max(stage["peak_memory_bytes"], row["peak_memory_bytes"])
        for key in SUMMED:
            stage[key] += row.get(key, 0)

    final = [r for r in rows if r["status"] == "done"]
    return {"attempts": rows, "stages": list(stages.values()), "total_all": _total(rows, carried=False),
            "total_final": _total(final, carried=True)}


def cost(ledger: dict[str, Any], stages: set[str], *, final_only: bool = False) -> dict[str, Any]:
    """Totals over the attempts of some stages (e.g. everything one ablation arm depends on), or
    with `final_only` the work in their final results: each finished attempt with what it carried."""
    rows = [r for r in ledger["attempts"] if r["stage"] in stages and (r["status"] == "done" or not final_only)]
    return _total(rows, carried=final_only)


def _total(rows: list[dict[str, Any]], *, carried: bool) -> dict[str, Any]:
    def value(row: dict[str, Any], key: str) -> float:
        return row.get(key, 0) + ((row.get("carried") or {}).get(key, 0) if carried else 0)

    return {key: sum(value(r, key) for r in rows) for key in SUMMED}


class TokenMeter:
    """Ledger entries from TRL's running `num_tokens` log: each new token adds `per_token` (e.g.
    `train_tokens=1`; GRPO's tokens are generated and then trained on). A trainer's `MetricsLog`
    calls it on every log, on every checkpoint save and when it resumes from one."""

    def __init__(self, meter: Meter, **per_token: float):
        self.meter, self.per_token, self.seen = meter, per_token, 0

    def __call__(self, row: dict[str, Any]) -> None:
        if "num_tokens" in row:
            new = int(row["num_tokens"]) - self.seen
            self.seen = int(row["num_tokens"])
            self.meter.add(**{key: amount * new for key, amount in self.per_token.items()})

    def saved(self, checkpoint: Path) -> None:
        carried = {**self.meter.contributed(), "num_tokens": self.seen}
        self.meter.flush()  # then the attempt's own record: it never shows less than its checkpoint carries
        write_json(Path(checkpoint) / CARRY_FILE, carried)

    def resumed(self, checkpoint: Path) -> None:
        """Carry the work `checkpoint` holds into this attempt, and count tokens on from its count."""
        carried = carried_cost(checkpoint)
        self.meter.carry(carried)
        self.seen = int(carried.get("num_tokens", 0))


def carried_cost(checkpoint: str | Path | None) -> dict[str, float]:
    """What `TokenMeter.saved` wrote beside `checkpoint` (its work and token count); {} for none."""
    path = Path(checkpoint or "") / CARRY_FILE
    return json.loads(path.read_text()) if checkpoint and path.is_file() else {}


def resumed_tokens(checkpoint: str | None) -> int:
    """The token count a checkpoint saved, to continue TRL's `num_tokens` from."""
    return int(carried_cost(checkpoint).get("num_tokens", 0))

"""`jsonl:<path>`: a user's own problems, one JSON object per line.

    {"question": "What is 1/2 + 1/4?", "answer": "3/4", "level": 2, "id": "frac-7"}

`question` and `answer` are required (an answer may be a JSON number); `level` (a positive
integer, default 1) and `id` are optional. Answers are judged by `r1kit.verify.is_correct`:
exact for integers, decimals and fractions, math-verify for LaTeX (`\\frac{1}{2}`, `\\sqrt{2}`),
and text answers (`"Paris"`, `"B"`) by normalised exact match: casefolded, blanks collapsed,
quotes and punctuation around them stripped, never as algebra on letters (`r1kit.verify.answer_kind`).
There are no reference traces, so the task serves GRPO rewards, evaluation and distillation;
its SFT completion is the answer alone.

`generate(count, seed=, level=)` draws rows of that level without replacement, in an order
fixed by (seed, level): prefix-stable and the same on every machine. The file is read on first
use (levels, generation), not by scoring: rows already built carry their answers, so rewards
work where the file is absent.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

from r1kit.errors import R1kitError
from r1kit.problem import Problem, problem_id
from r1kit.tasks.base import Task

PREFIX = "jsonl:"
MAX_LINES = 1_000_000


class JsonlTask(Task):
    # How score_answer judges a row's answer, by its `r1kit.verify.answer_kind`.
    answer_scoring = "numbers exactly; LaTeX by math-verify, decimals exact; text by normalised exact match"

    def __init__(self, path: str | Path):
        super().__init__()
        self.path = Path(path)
        self.name = PREFIX + str(path)
        self._rows: dict[int, list[Problem]] | None = None

    @property
    def rows(self) -> dict[int, list[Problem]]:
        """level → problems, in file order (read once)."""
        if self._rows is None:
            self._rows = self._read()
        return self._rows

    @property
    def levels(self) -> tuple[int, ...]:  # type: ignore[override]
        return tuple(sorted(self.rows))

    def check_level(self, level: int) -> None:
        if level not in self.rows:
            raise R1kitError(f"{self.path} has problems at level {', '.join(map(str, self.levels))}, "
                             f"not {level!r}; set levels to those (a row's level defaults to 1)")

    def generate(self, count: int, *, seed: int, level: int) -> list[Problem]:
        self.check_level(level)
        pool = self.rows[level]
        if not 0 <= count <= len(pool):
            raise R1kitError(f"{self.path} has {len(pool)} problems at level {level}, "
                             f"{count} were asked for; ask for at most {len(pool)}")
        order = list(range(len(pool)))
        random.Random(f"jsonl|{seed}|{level}").shuffle(order)  # str seeds hash the same everywhere
        return [pool[i] for i in order[:count]]

    def make(self, seed: int, level: int) -> Problem:
        return self.generate(1, seed=seed, level=level)[0]

    def _read(self) -> dict[int, list[Problem]]:
        rows: dict[int, list[Problem]] = {}
        for problem in read_problems(self.path, lambda row: self.name):
            rows.setdefault(problem.level, []).append(problem)
        return rows


def read_problems(path: str | Path, task_of: Callable[[dict], str]) -> list[Problem]:
    """The one JSONL problem reader (`jsonl:` tasks and `r1kit eval --data`): one
    `{"question", "answer", "level"?, "id"?}` object per line, `task_of(row)` naming its task.
    A bad line, a file that is not UTF-8 or holds no problem is one error naming the place."""
    path = Path(path)
    if not path.is_file():
        raise R1kitError(f"no such file: {path}; give the path of a JSONL file with one "
                         "{\"question\": …, \"answer\": …} object per line")
    problems = []
    try:
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                if number > MAX_LINES:
                    raise R1kitError(f"{path} has more than {MAX_LINES:,} lines; split it")
                if line.strip():
                    problems.append(_problem(path, line, f"{path}:{number}", task_of))
    except UnicodeDecodeError as error:
        raise R1kitError(f"{path} is not UTF-8 text (byte {error.start}); save it as UTF-8") from None
    if not problems:
        raise R1kitError(f"{path} holds no problems")
    return problems


def _problem(path: Path, line: str, where: str, task_of: Callable[[dict], str]) -> Problem:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as error:
        raise R1kitError(f"{where}: not valid JSON ({error.msg} at column {error.colno})") from None
    if not isinstance(row, dict):
        raise R1kitError(f"{where}: need a JSON object with 'question' and 'answer'")
    question, answer, level = row.get("question"), row.get("answer"), row.get("level", 1)
    if not isinstance(question, str) or not question.strip():
        raise R1kitError(f"{where}: 'question' must be a non-empty string")
    if isinstance(answer, bool) or not isinstance(answer, (str, int, float)) or not str(answer).strip():
        raise R1kitError(f"{where}: 'answer' must be a non-empty string or a number")
    if isinstance(level, bool) or not isinstance(level, int) or level < 1:
        raise R1kitError(f"{where}: 'level' must be a positive integer, got {level!r}")
    pid = str(row["id"]) if "id" in row else problem_id(path.stem, level, question)
    return Problem(id=pid, task=task_of(row), level=level, question=question, answer=str(answer).strip(),
                   metadata={"source": where, **(row.get("metadata") or {})})

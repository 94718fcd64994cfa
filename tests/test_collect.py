"""Trace collection: only verified traces are kept, every sample is accounted for, and a run
killed at any moment resumes to exactly what an uninterrupted run writes."""

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from r1kit import tasks
from r1kit.data import generate
from r1kit.errors import R1kitError
from r1kit.numbers import format_number
from r1kit.render import completion_text, prompt_text
from r1kit.teachers.collect import (
    collect,
    load_summary,
    normalize,
    read_traces,
    traces_dataset,
)

ARGS = dict(task="arithmetic", levels="1-3", count=30, samples_per_problem=4, seed=0, max_tokens=256)
KINDS = 5  # what the scripted teacher does for problem i: KINDS[i % 5], see script()


def script(problem, kind: int, sample: int, route: str = "verbal") -> str:
    """0: the compiler's trace every time (1 kept + 3 duplicates); 1: a wrong answer; 2: a false step
    with the right answer; 3: trace, same trace re-spaced (duplicate), another correct route (verbal),
    no answer; 4: overlong."""
    trace = completion_text(problem, "think")
    if kind == 0:
        return trace
    if kind == 1:
        return trace.replace(f"<answer>{problem.answer}</answer>", f"<answer>{problem.answer}1</answer>")
    if kind == 2:
        step = problem.steps[0]
        false = f"{format_number(step.left)} {step.op} {format_number(step.right)} = {format_number(step.result + 1)}"
        return f"<think>\n{false}\n</think>\n<answer>{problem.answer}</answer>"
    if kind == 3:
        other = completion_text(problem, "verbal") if route == "verbal" else f"<answer>{problem.answer}</answer>"
        return [trace, trace.replace("\n", "\n\n "), other, "I am not sure."][sample]
    return "<think>\n" + "1 + 1 = 2\n" * 200


EXPECTED_REASON = {1: "wrong_answer", 2: "false_step", 4: "overlong"}


class ScriptedTeacher:
    """A test double of the Teacher protocol that answers from script()."""

    style = "think"

    def __init__(self, args=ARGS, name="scripted", delay=0.0, route="verbal"):
        problems = generate(args["task"], [1, 2, 3], args["count"], args["seed"])
        self.kind = {prompt_text(p, "think", tasks.get(p.task)): (p, i % KINDS) for i, p in enumerate(problems)}
        self.name, self.delay, self.route = name, delay, route

    def generate(self, prompts, *, n=1, max_tokens=256, temperature=1.0, seed=0, progress=None):
        outputs = []
        for prompt in prompts:
            problem, kind = self.kind[prompt]
            outputs.append([script(problem, kind, s, self.route) for s in range(n)])
            time.sleep(self.delay)
            if progress:
                progress(1)
        return outputs

    def count_tokens(self, text: str) -> int:
        return len(text) // 4


def expected(args=ARGS):
    """(id, sample) of every trace that must be kept, and the per-level counts summary.json must hold."""
    keep, levels = set(), {}
    for i, problem in enumerate(generate(args["task"], [1, 2, 3], args["count"], args["seed"])):
        kind = i % KINDS
        stats = levels.setdefault(str(problem.level), {"problems": 0, "samples": 0, "accepted": 0, "rejected": Counter()})
        stats["problems"] += 1
        stats["samples"] += 4
        if kind == 0:
            keep.add((problem.id, 0))
            stats["rejected"]["duplicate"] += 3
        elif kind == 3:
            keep |= {(problem.id, 0), (problem.id, 2)}
            stats["rejected"].update(["duplicate", "no_answer"])
        else:
            stats["rejected"][EXPECTED_REASON[kind]] += 4
        stats["accepted"] = stats["samples"] - sum(stats["rejected"].values())
    return keep, levels


def test_collect_keeps_exactly_the_verified_traces(tmp_path):
    summary = collect(ScriptedTeacher(), out=tmp_path, chunk_size=7, **ARGS)
    rows = [json.loads(line) for line in (tmp_path / "traces.jsonl").read_text().splitlines()]
    keep, levels = expected()
    assert {(r["id"], r["sample"]) for r in rows} == keep and len(rows) == len(keep)
    assert len({(r["id"], normalize(r["completion"])) for r in rows}) == len(rows)  # no duplicates
    assert set(rows[0]) == {"id", "task", "level", "question", "answer", "prompt", "completion", "teacher",
                            "sample", "step_score"}
    assert all(r["teacher"] == "scripted" and r["step_score"] == 1.0 for r in rows)

    written = json.loads((tmp_path / "summary.json").read_text())
    assert written["complete"] and summary.complete
    for level, want in levels.items():
        got = written["levels"][level]
        assert (got["problems"], got["samples"], got["accepted"]) == (want["problems"], want["samples"], want["accepted"])
        assert got["rate"] == pytest.approx(want["accepted"] / want["samples"])
        assert got["rejected"] == dict(want["rejected"])
    assert written["total"]["accepted"] == len(rows) == summary.traces_rows
    rejected = [json.loads(line) for line in (tmp_path / "rejected.jsonl").read_text().splitlines()]
    assert len(rejected) == written["total"]["samples"] - len(rows)

    dataset = traces_dataset(tmp_path)
    assert len(dataset) == len(rows) and dataset[0]["completion"] == rows[0]["completion"]
    chat = traces_dataset(tmp_path, conversational=True)
    assert chat[0]["prompt"] == [{"role": "user", "content": rows[0]["prompt"]}]
    assert chat[0]["completion"][0]["role"] == "assistant"


def test_another_correct_route_is_kept_unless_steps_are_required(tmp_path):
    args = dict(ARGS, count=10)
    keep, _ = expected(args)
    free = collect(ScriptedTeacher(args, route="answer"), out=tmp_path / "free", **args)
    assert free.traces_rows == len(keep)  # the bare answer claims nothing false: kept
    strict = collect(ScriptedTeacher(args, route="answer"), out=tmp_path / "strict", min_step_score=1.0, **args)
    assert strict.traces_rows == len(keep) - 2  # problems 3 and 8 lose their answer-only sample
    assert strict.total.rejected["low_step_score"] == 2


@pytest.fixture
def one_thread():
    # tiny matmuls on a shared 2-core machine: a second torch thread only waits for the first
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_local_teacher_every_sample_is_accounted_for(tmp_path, one_thread):
    from r1kit.models import build_char_tokenizer, build_tiny_model, save_model
    from r1kit.teachers import load_teacher

    tokenizer = build_char_tokenizer()
    save_model(build_tiny_model("tiny-1m", tokenizer), tokenizer, tmp_path / "m",
               prompt_info={"style": "compact", "chat": False})
    teacher = load_teacher(f"local:{tmp_path / 'm'}", batch_size=8)
    assert teacher.style == "compact" and teacher.name == f"local:{tmp_path / 'm'}"
    greedy = teacher.generate(["1+2\n"], n=3, max_tokens=5, temperature=0)
    assert len(greedy[0]) == 3 and len(set(greedy[0])) == 1

    args = dict(task="arithmetic", levels="1-2", count=4, samples_per_problem=2, max_tokens=8, temperature=1.0)
    summary = collect(teacher, out=tmp_path / "a", chunk_size=3, **args)
    total = summary.total
    assert total.problems == 4 and total.samples == 8
    assert total.accepted + sum(total.rejected.values()) == 8
    assert summary.traces_rows == total.accepted
    assert summary.tokens is not None and summary.tokens > 0
    again = collect(teacher, out=tmp_path / "b", chunk_size=3, **args)  # seeded: a rerun samples the same
    assert (tmp_path / "b" / "rejected.jsonl").read_text() == (tmp_path / "a" / "rejected.jsonl").read_text()
    assert again.as_dict()["levels"] == summary.as_dict()["levels"]


RUNNER = """
import json, os, signal, sys
sys.path.insert(0, {tests!r})
import r1kit.teachers.collect as collect_module
from test_collect import ARGS, ScriptedTeacher

mode, out = sys.argv[1], sys.argv[2]
if mode.startswith("die-at-"):  # SIGKILL itself in the middle of writing a chunk's rows
    at, calls, append = int(mode[len("die-at-"):]), [0], collect_module.append_rows
    def dying_append(path, rows):
        calls[0] += 1
        if calls[0] == at:
            with path.open("a") as f:
                f.write(json.dumps(rows[0])[:30] if rows else '{{"torn')
            os.kill(os.getpid(), signal.SIGKILL)
        append(path, rows)
    collect_module.append_rows = dying_append
collect_module.collect(ScriptedTeacher(delay=0.01 if mode == "slow" else 0.0), out=out, chunk_size=4, **ARGS)
"""


def test_resume_after_sigkill_matches_an_uninterrupted_run(tmp_path):
    reference = collect(ScriptedTeacher(), out=tmp_path / "ref", chunk_size=4, **ARGS)
    runner = tmp_path / "runner.py"
    runner.write_text(RUNNER.format(tests=str(Path(__file__).parent)))
    out = tmp_path / "out"
    start = lambda mode: subprocess.Popen([sys.executable, str(runner), mode, str(out)])

    assert start("die-at-5").wait(timeout=120) == -signal.SIGKILL  # killed while appending chunk 3's rows
    assert load_summary(out).chunks_done == 2
    assert (out / "traces.jsonl").read_text().count("\n") >= load_summary(out).traces_rows

    process = start("slow")  # killed from outside, whenever it happens to be
    while not (out / "summary.json").exists() or load_summary(out).chunks_done < 4:
        assert process.poll() is None, "the run ended before it could be killed"
        time.sleep(0.01)
    time.sleep(0.03)
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=60) == -signal.SIGKILL
    assert not load_summary(out).complete

    assert start("slow").wait(timeout=120) == 0
    assert (out / "traces.jsonl").read_text() == (tmp_path / "ref" / "traces.jsonl").read_text()
    assert (out / "rejected.jsonl").read_text() == (tmp_path / "ref" / "rejected.jsonl").read_text()
    finished = load_summary(out)
    assert finished.as_dict() == reference.as_dict()
    keep, _ = expected()
    assert sorted((r["id"], r["sample"]) for r in read_traces(out)) == sorted(keep)


def test_resume_with_other_arguments_is_an_error(tmp_path):
    args = dict(ARGS, count=6)
    collect(ScriptedTeacher(args), out=tmp_path, **args)
    with pytest.raises(R1kitError, match=r"other arguments \(seed: 0 -> 1\)"):
        collect(ScriptedTeacher(args), out=tmp_path, **dict(args, seed=1))
    with pytest.raises(R1kitError, match="teacher: 'scripted' -> 'other'"):
        collect(ScriptedTeacher(args, name="other"), out=tmp_path, **args)
    with pytest.raises(R1kitError, match="samples_per_problem"):
        collect(ScriptedTeacher(args), out=tmp_path, **dict(args, samples_per_problem=2))
    again = collect(ScriptedTeacher(args), out=tmp_path, **args)  # the same arguments: nothing more to do
    assert again.complete and again.traces_rows == len(expected(args)[0])


def test_a_teacher_that_miscounts_is_an_error(tmp_path):
    class Short(ScriptedTeacher):
        def generate(self, prompts, **kwargs):
            return super().generate(prompts, **kwargs)[:-1]

    with pytest.raises(R1kitError, match="must return n completions per prompt"):
        collect(Short(), out=tmp_path, **ARGS)


def r1kit(*args, cwd=None):
    return subprocess.run([sys.executable, "-c", "from r1kit.cli import run; run()", *args],
                          check=False, capture_output=True, text=True, cwd=cwd, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


@pytest.mark.parametrize("args, message", [
    (["--teacher", "bogus"], "error: teacher 'bogus': use local:PATH_OR_HUB_ID or openai:MODEL_NAME"),
    (["--teacher", "local:m", "--base-url", "http://x"], "error: --base-url: only for openai: teachers"),
])
def test_cli_bad_teacher_is_one_error_line(args, message, tmp_path):
    result = r1kit("distill", "collect", *args, "--out", "X", cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), result.stderr
    assert not (tmp_path / "X").exists()


def test_cli_collect_prints_the_acceptance_table(tmp_path, one_thread):
    from r1kit.models import build_char_tokenizer, build_tiny_model, save_model

    tokenizer = build_char_tokenizer()
    save_model(build_tiny_model("tiny-1m", tokenizer), tokenizer, tmp_path / "m",
               prompt_info={"style": "compact", "chat": False})
    result = r1kit("distill", "collect", "--teacher", f"local:{tmp_path / 'm'}", "--levels", "1", "--count", "2",
                   "--samples-per-problem", "2", "--max-new-tokens", "8", "--out", str(tmp_path / "c"))
    assert result.returncode == 0, result.stderr
    assert "kept" in result.stdout and "samples" in result.stdout  # the acceptance table, as in the report
    assert load_summary(tmp_path / "c").total.samples == 4


@pytest.mark.parametrize("existing", [False, True])
def test_an_unreachable_teacher_fails_fast_and_leaves_out_as_it_found_it(tmp_path, existing):
    from r1kit.teachers import load_teacher

    out = tmp_path / "new" / "c"
    if existing:
        out.mkdir(parents=True)
        (out / "notes.txt").write_text("mine")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    teacher = load_teacher("openai:m", base_url="http://127.0.0.1:9/v1")  # the client's default 5 retries
    start = time.perf_counter()
    with pytest.raises(R1kitError, match=r"cannot reach http://127.0.0.1:9/v1 .*is the server running"):
        collect(teacher, out=out, **dict(ARGS, count=4))
    assert time.perf_counter() - start < 3  # not after ~15 s of retries
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # no collect.json, no .lock


def test_a_run_that_fails_after_a_committed_chunk_keeps_it_to_resume(tmp_path):
    args = dict(ARGS, count=6)

    class FailsSecond(ScriptedTeacher):
        calls = 0

        def generate(self, prompts, **kwargs):
            self.calls += 1
            if self.calls == 2:
                raise R1kitError("teacher down")
            return super().generate(prompts, **kwargs)

    with pytest.raises(R1kitError, match="teacher down"):
        collect(FailsSecond(args), out=tmp_path / "c", chunk_size=3, **args)
    assert load_summary(tmp_path / "c").chunks_done == 1 and (tmp_path / "c" / "collect.json").is_file()
    resumed = collect(ScriptedTeacher(args), out=tmp_path / "c", chunk_size=3, **args)
    assert resumed.complete and resumed.traces_rows == len(expected(args)[0])

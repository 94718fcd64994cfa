"""Verified rewriting: a natural-language rewrite is kept only if every compiler step is in it,
nothing in it is false, and its final answer is right."""

import json

from r1kit.data import generate
from r1kit.numbers import format_number
from r1kit.tasks.arithmetic import ArithmeticTask
from r1kit.teachers.collect import load_summary, traces_dataset
from r1kit.teachers.rewrite import judge_rewrite, rewrite, rewrite_prompt

WORDS = {"+": "plus", "-": "minus", "*": "times", "/": "divided by"}


def say(step, result=None) -> str:
    a, b, r = (format_number(v) for v in (step.left, step.right, step.result if result is None else result))
    return f"{a} {WORDS[step.op]} {b} is {r}"


def prose(problem, *, wrong_step=False, skip_first=False, answer=None) -> str:
    steps = problem.steps[1:] if skip_first else problem.steps
    sentences = [f"{'First' if i == 0 else 'Then'}, {say(s, s.result + 1 if wrong_step and i == 0 else None)}."
                 for i, s in enumerate(steps)]
    if answer != "":
        sentences.append(f"The answer is {problem.answer if answer is None else answer}.")
    return " ".join(sentences)


def test_the_judge_on_one_problem():
    problem = ArithmeticTask().compile("12*(3+4)")
    assert judge_rewrite(problem, "Add 3 and 4 to get 7. Multiply 12 by 7 to get 84. The answer is 84.") == (None, 1.0)
    assert judge_rewrite(problem, "4 plus 3 is 7, and 12 times 7 is 84. So the answer is 84.")[0] is None
    assert judge_rewrite(problem, "3 plus 4 is 8. 12 times 7 is 84. The answer is 84.")[0] == "false_step"
    assert judge_rewrite(problem, "12 times 7 is 84. The answer is 84.")[0] == "missing_step"
    assert judge_rewrite(problem, "3 plus 4 is 7. 12 times 7 is 84. The answer is 85.")[0] == "wrong_answer"
    assert judge_rewrite(problem, "3 plus 4 is 7. 12 times 7 is 84.")[0] == "no_answer"
    assert "3 + 4 = 7" in rewrite_prompt(problem) and "12 * 7 = 84" in rewrite_prompt(problem)
    assert "Compute 12 * (3 + 4)." in rewrite_prompt(problem) and "The answer is 84." in rewrite_prompt(problem)


ARGS = dict(task="arithmetic", levels="2-3", count=20, seed=0)
KINDS = ("faithful", "wrong_step", "missing_step", "wrong_answer", "no_answer")


class RewritingTeacher:
    """A test double: rewrites problem i faithfully, or with the flaw KINDS[i % 5]."""

    name, style = "rewriter", "think"

    def __init__(self):
        problems = generate(ARGS["task"], [2, 3], ARGS["count"], ARGS["seed"])
        self.by_prompt = {rewrite_prompt(p): (p, KINDS[i % len(KINDS)]) for i, p in enumerate(problems)}

    def generate(self, prompts, *, n=1, max_tokens=256, temperature=1.0, seed=0, progress=None):
        out = []
        for prompt in prompts:
            problem, kind = self.by_prompt[prompt]
            text = prose(problem, wrong_step=kind == "wrong_step", skip_first=kind == "missing_step",
                         answer={"wrong_answer": problem.answer + "0", "no_answer": ""}.get(kind))
            out.append([text] * n)
        return out


def test_only_faithful_rewrites_are_kept(tmp_path):
    summary = rewrite(RewritingTeacher(), out=tmp_path, samples_per_problem=2, chunk_size=6, **ARGS)
    teacher = RewritingTeacher()
    faithful = {p.id: p for p, kind in teacher.by_prompt.values() if kind == "faithful"}
    assert all(len(p.steps) >= 2 for p, _ in teacher.by_prompt.values())

    rows = [json.loads(line) for line in (tmp_path / "traces.jsonl").read_text().splitlines()]
    assert {r["id"] for r in rows} == set(faithful) and len(rows) == len(faithful)  # second copies: duplicates
    for row in rows:
        problem = faithful[row["id"]]
        assert row["completion"] == f"<think>\n{prose(problem)}\n</think>\n<answer>{problem.answer}</answer>"
        assert row["prompt"].startswith(f"Compute {problem.question}.") and row["step_score"] == 1.0
    assert summary.total.rejected == {"false_step": 8, "missing_step": 8, "wrong_answer": 8, "no_answer": 8,
                                      "duplicate": 4}
    written = load_summary(tmp_path).as_dict()
    assert written["mode"] == "rewrite" and written["total"]["accepted"] == 4
    assert sum(s["samples"] for s in written["levels"].values()) == 40
    assert len(traces_dataset(tmp_path)) == 4


def test_verbal_rows_are_the_rewrite_itself(tmp_path):
    rewrite(RewritingTeacher(), out=tmp_path, style="verbal", **ARGS)
    row = json.loads((tmp_path / "traces.jsonl").read_text().splitlines()[0])
    assert row["completion"].startswith("First, ") and row["completion"].endswith(f"The answer is {row['answer']}.")
    assert row["prompt"].endswith("Explain each step, then state the answer.")

"""Your own task and reward from a recipe (docs/custom-tasks.md): the walkthrough's task checks its
own steps, and its recipe runs every stage from `r1kit run` through `imports:`."""

import json
from pathlib import Path

import pytest
from datasets import load_from_disk

from r1kit import recipe as recipes
from r1kit.errors import R1kitError

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "custom_task"


@pytest.fixture(scope="module")
def digit_sum():
    recipes.import_user_code(["digit_sum.py"], EXAMPLE)  # as the recipe does
    from r1kit import tasks

    return tasks.get("digit_sum")


def test_the_task_makes_exact_problems_and_checks_answers(digit_sum):
    problems = digit_sum.generate(20, seed=0, level=2)
    assert problems == digit_sum.generate(20, seed=0, level=2)  # same seed, same problems
    for problem in problems:
        digits = problem.question.removeprefix("digit sum ")
        assert len(digits) == 5 and problem.answer == str(sum(map(int, digits)))
        assert all(step.true for step in problem.steps) and str(problem.steps[-1].result) == problem.answer
    first = problems[0]
    assert digit_sum.score(f"answer {first.answer}", first) == 1.0
    assert digit_sum.score(f"answer {int(first.answer) + 1}", first) == 0.0
    assert digit_sum.score("no answer at all", first) == 0.0


def test_the_reward_is_registered_and_gives_partial_credit(digit_sum):
    from r1kit import rewards

    functions, weights = rewards.build({"accuracy": 1.0, "closeness": 0.5, "steps": {"weight": 0.1}})
    completions = ["4+8=12|answer 15", "answer 17", "answer 40", "answer x", "no answer"]
    assert functions[1](completions, answer=["15"] * 5) == [1.0, 0.8, 0.0, 0.0, 0.0]
    assert functions[0](completions, answer=["15"] * 5, task=["digit_sum"] * 5) == [1.0, 0, 0, 0, 0]
    assert weights == [1.0, 0.5, 0.1]
    strict = rewards.get("closeness", scale=2)  # the recipe's parameters reach the factory
    assert strict(["answer 16", "answer 18"], answer=["15", "15"]) == [0.5, 0.0]


def test_the_walkthrough_recipe_runs_every_stage_with_the_users_code(tmp_path, cli):
    out = tmp_path / "run"
    result = cli("run", str(EXAMPLE / "digit_sum.yaml"), "--smoke", "--out", str(out),
                 cwd=tmp_path, env={"R1KIT_CACHE": str(tmp_path / "cache")})
    assert result.returncode == 0, result.stderr[-3000:]
    sft_rows = load_from_disk(str(out / "stages" / "sft" / "data"))
    row = sft_rows[0] if "completion" in sft_rows.column_names else sft_rows["train"][0]
    assert row["prompt"].startswith("digit sum ") and "|answer " in row["completion"]  # SFT on the task's traces
    grpo = [json.loads(line) for line in (out / "stages" / "grpo" / "metrics.jsonl").read_text().splitlines()]
    assert any("rewards/closeness_reward/mean" in entry for entry in grpo)  # the user's reward was trained on
    results = json.loads((out / "results.json").read_text())
    assert {(row["model"], row["level"]) for row in results["evals"]} >= {(m, l) for m in ("base", "sft", "grpo")
                                                                          for l in (1, 2, 3, 4)}
    assert "digit sum " in (out / "stages" / "eval" / "eval.json").read_text()


def test_without_the_import_the_task_is_unknown_and_a_bad_import_is_one_line(tmp_path, cli):
    recipe = (EXAMPLE / "digit_sum.yaml").read_text()
    (tmp_path / "no_import.yaml").write_text(recipe.replace("imports: [digit_sum.py]", ""))
    result = cli("run", "no_import.yaml", "--print-config", cwd=tmp_path)
    assert result.returncode == 1 and "unknown reward 'closeness'" in result.stderr  # the first thing checked
    (tmp_path / "missing.yaml").write_text(recipe)  # digit_sum.py is not beside it
    result = cli("run", "missing.yaml", "--print-config", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == f"error: missing.yaml: imports: no file at {tmp_path / 'digit_sum.py'}\n"


def test_imports_name_modules_or_files_and_report_the_users_error(tmp_path):
    (tmp_path / "broken.py").write_text("x = 1\nraise ValueError('no such thing')\n")
    with pytest.raises(R1kitError, match=r"imports: broken.py failed: .*broken.py:2: ValueError: no such thing"):
        recipes.import_user_code(["broken.py"], tmp_path)
    with pytest.raises(R1kitError, match="imports: not_a_module_anywhere failed: ModuleNotFoundError"):
        recipes.import_user_code(["not_a_module_anywhere"], tmp_path)
    with pytest.raises(R1kitError, match="imports must be a list of module names or .py files"):
        recipes.import_user_code("digit_sum.py", tmp_path)
    (tmp_path / "beside.py").write_text("import sys\nsys.modules[__name__].loaded = True\n")
    recipes.import_user_code(["beside"], tmp_path)  # a module name, found beside the recipe
    import beside

    assert beside.loaded


def test_the_command_line_imports_user_code_too(tmp_path, cli):
    listing = cli("--import", str(EXAMPLE / "digit_sum.py"), "tasks", cwd=tmp_path)
    assert listing.returncode == 0 and "digit_sum\tlevels 1..4" in listing.stdout
    built = cli("--import", str(EXAMPLE / "digit_sum.py"), "data", "build", "--task", "digit_sum", "--levels", "1",
                "--count", "10", "--out", "d", cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    assert load_from_disk(str(tmp_path / "d" / "hf"))["train"][0]["prompt"].startswith("digit sum ")


def test_the_docs_show_the_example_files_as_they_are():
    """docs/custom-tasks.md shows each example file whole; it must be the file that the tests run."""
    import re

    doc = (EXAMPLE.parent.parent / "docs" / "custom-tasks.md").read_text()
    shown = dict(re.findall(r'```\w+ title="([^"]+)"\n(.*?)```', doc, flags=re.DOTALL))
    assert set(shown) == {"examples/custom_task/digit_sum.py", "examples/custom_task/digit_sum.yaml"}
    for path, text in shown.items():
        assert text == (EXAMPLE.parent.parent / path).read_text(), f"{path} differs from its copy in the docs"

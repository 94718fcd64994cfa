"""The command line's conventions (click's): -h and --version, exit 1 when the work fails and 2
when the command line is wrong, choices and an example in every help, one name per concept,
did-you-mean for options, shipped recipes by name from anywhere."""

import subprocess
import sys

import pytest
import yaml

from r1kit import recipe as recipes
from r1kit.cli import app, main
from r1kit.errors import R1kitError


def r1kit(*args, cwd=None, env=None):
    import os

    return subprocess.run([sys.executable, "-m", "r1kit", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300, env={**os.environ, **(env or {})})


def commands(group=None, path=()):
    """Every command's path, e.g. ("data", "build")."""
    from typer.main import get_command

    group = group or get_command(app)
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from commands(command, (*path, name))
        else:
            yield (*path, name)


def test_version_and_short_help_exit_0(tmp_path):
    import r1kit as package

    version = r1kit("--version", cwd=tmp_path)
    assert version.returncode == 0 and version.stdout == f"r1kit {package.__version__}\n"
    short = r1kit("-h", cwd=tmp_path)
    assert short.returncode == 0 and "Usage: r1kit" in short.stdout and "compile" in short.stdout


@pytest.mark.parametrize("group", [[], ["data"], ["distill"]])
def test_a_bare_group_prints_its_help_and_exits_2_without_an_error_line(group, tmp_path):
    result = r1kit(*group, cwd=tmp_path)
    assert result.returncode == 2 and "Usage: r1kit" in result.stdout
    assert result.stderr == ""


def test_failures_exit_1_and_misuse_exits_2(capsys):
    assert main(["compile", "1/0"]) == 1
    assert capsys.readouterr().err == "error: division by zero in 1 / 0\n"
    assert main(["compile", "--nope"]) == 2
    assert capsys.readouterr().err == "error: No such option: --nope\n"
    assert main(["compile", "1+2", "--style", "fancy"]) == 2
    assert "'fancy' is not one of 'compact', 'think', 'verbal', 'answer'" in capsys.readouterr().err


@pytest.mark.parametrize("args, hint", [
    (["compile", "--stlye", "compact", "1+2"], "No such option: --stlye (did you mean --style?)"),
    (["compile", "1+2", "--fine"], "No such option: --fine (did you mean --granularity partial?)"),
    (["data", "build", "--out", "X", "--stlye", "think"], "No such option: --stlye (did you mean --style?)"),
    (["eval", "--model", "m", "--out", "r.json"], "No such option: --out (did you mean --json?)"),
    (["distill", "collect", "--teacher", "openai:m", "--out", "X", "--max-tokens", "8"],
     "No such option: --max-tokens (did you mean --max-new-tokens?)"),
    (["serve", "--model", "m", "--max-tokens-limit", "8"],
     "No such option: --max-tokens-limit (did you mean --max-new-tokens-limit?)"),
])
def test_a_mistyped_or_renamed_option_gets_a_did_you_mean(args, hint, capsys):
    assert main(args) == 2
    assert capsys.readouterr().err == f"error: {hint}\n"


def test_compile_still_reads_a_leading_minus_as_an_expression(capsys):
    assert main(["compile", "-2 + 3", "--style", "compact"]) == 0
    assert capsys.readouterr().out == "-2+3=1|answer 1\n"
    assert main(["compile", "36*18", "--style", "compact", "--granularity", "partial"]) == 0
    assert capsys.readouterr().out == "36*10=360;36*8=288;360+288=648|answer 648\n"


@pytest.mark.parametrize("path", list(commands()), ids=" ".join)
def test_every_help_has_an_example_choices_and_no_type_on_flags(path, capsys):
    assert main([*path, "-h"]) == 0
    text = capsys.readouterr().out
    assert "Example: r1kit " + " ".join(path) in " ".join(text.split())
    assert "<bool>" not in text and "`" not in text


def test_help_lists_the_choices(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # one option a line
    for path, listing in ((["compile"], "<compact|think|verbal|answer|short>"), (["eval"], "<auto|hf|vllm>"),
                          (["run"], "<none|accelerate>"), (["data", "build"], "<arrow|parquet>"),
                          (["distill", "collect"], "<chat|completions>"), (["compile"], "<op|partial|digit>")):
        assert main([*path, "--help"]) == 0
        assert listing in capsys.readouterr().out


def test_one_name_per_concept(capsys):
    for path in (["eval"], ["distill", "collect"], ["distill", "rewrite"]):
        assert main([*path, "-h"]) == 0
        assert "--max-new-tokens " in capsys.readouterr().out


def test_eval_data_refuses_the_options_it_would_ignore(tmp_path, capsys):
    rows = tmp_path / "mine.jsonl"
    rows.write_text('{"question": "1+1", "answer": "2"}\n')
    assert main(["eval", "--model", "m", "--data", str(rows), "--levels", "1-3", "--count", "5"]) == 2
    assert capsys.readouterr().err == "error: --data reads its problems from the file; drop --levels, --count\n"


def test_eval_refuses_a_temperature_of_zero(capsys):
    assert main(["eval", "--model", "m", "--k", "4", "--temperature", "0"]) == 2
    assert capsys.readouterr().err == "error: --temperature must be above 0 (greedy pass@1 is always measured)\n"


def test_compare_says_a_file_is_missing(tmp_path, capsys):
    assert main(["compare", str(tmp_path / "a.json"), str(tmp_path / "b.json")]) == 1
    assert capsys.readouterr().err == f"error: no file at {tmp_path / 'a.json'}; write one with r1kit eval --json " \
                                      f"{tmp_path / 'a.json'}\n"


def test_data_build_reports_the_path_load_from_disk_reads(tmp_path, capsys):
    import datasets

    assert main(["data", "build", "--out", str(tmp_path / "d1"), "--count", "20"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"to {tmp_path / 'd1' / 'hf'} " in out
    assert len(datasets.load_from_disk(str(tmp_path / "d1" / "hf"))["train"]) == 18


def test_an_unknown_hub_id_offline_fails_at_once_naming_hf_hub_offline(tmp_path):
    result = r1kit("eval", "--model", "Qwen/NotAModel-0B", cwd=tmp_path,
                   env={"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "cache")})
    assert result.returncode == 1
    assert result.stderr == ("error: 'Qwen/NotAModel-0B' is not a local path and not in the Hugging Face cache, and "
                             "HF_HUB_OFFLINE is set; download it where there is a network (hf download "
                             "Qwen/NotAModel-0B) or give a local path\n")


# ------------------------------------------------------------------ shipped recipes


def test_shipped_recipes_by_name_from_anywhere(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no recipes/ here
    assert main(["recipes"]) == 0
    listing = capsys.readouterr().out
    assert "quickstart\tThe R1 recipe on a laptop:" in listing
    assert main(["recipes", "show", "quickstart"]) == 0
    assert capsys.readouterr().out == recipes.shipped()["quickstart"].read_text(encoding="utf-8")
    for spelling in ("quickstart", "quickstart.yaml", "recipes/quickstart.yaml"):
        assert recipes.find(spelling) == recipes.shipped()["quickstart"]
    assert main(["run", "quickstrat"]) == 1
    assert "error: no recipe at quickstrat (did you mean 'quickstart'?); shipped recipes" in capsys.readouterr().err


def test_a_local_file_wins_over_a_shipped_recipe(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "recipes").mkdir()
    mine = tmp_path / "recipes" / "quickstart.yaml"
    mine.write_text("name: mine\n")
    assert recipes.find("recipes/quickstart.yaml") == mine.relative_to(tmp_path)
    with pytest.raises(R1kitError, match="no recipe at elsewhere/quickstart.yaml"):
        recipes.find("elsewhere/quickstart.yaml")  # a path that names a folder is a path, not a name


def test_print_config_shows_the_resolved_recipe_without_running_it(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["run", "quickstart", "--smoke", "--set", "stages.sft.train.max_steps=3", "--print-config"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    sft = next(stage for stage in printed["stages"] if stage["name"] == "sft")
    assert sft["train"]["max_steps"] == 3 and sft["data"]["count"] == 300  # --set, then the smoke: count
    assert sft["data"]["levels"] == [1, 2, 3] and sft["from"] == "base"  # every default filled in
    assert list(tmp_path.iterdir()) == []  # nothing ran
    again = recipes.validate(printed)  # what it prints is a recipe that loads to the same thing
    assert again == recipes.load("quickstart", ["stages.sft.train.max_steps=3"], smoke=True)


def test_recipe_errors_read_as_one_line(tmp_path):
    raw = {"name": "x", "model": {"preset": "tiny-1m"},
           "stages": [{"name": "base", "kind": "pretrain"}, {"name": "tune", "kind": "sfft", "from": "base"}]}
    with pytest.raises(R1kitError) as error:
        recipes.validate(raw, source="r.yaml")
    assert str(error.value) == ("r.yaml: stages.tune.kind: unknown kind 'sfft' (did you mean 'sft'?); kinds: "
                                "pretrain, sft, grpo, collect, distill, eval, lm_eval, report")
    for change, message in (
        ({"kind": "sft"}, "stages[1].name: required"),
        ({"name": "t", "kind": "sft", "data": {"count": "many"}}, "stages.t.data.count: must be an integer, got 'many'"),
        ({"name": "t", "kind": "sft", "data": {"count": 0}}, "stages.t.data.count: must be at least 1, got 0"),
        ({"name": "t", "kind": "distill", "mode": "x"}, "stages.t.mode: must be one of 'sequence', 'logit', got 'x'"),
        ({"name": "t"}, "stages.t: missing kind; kinds: pretrain, sft"),
    ):
        raw["stages"][1] = change
        with pytest.raises(R1kitError) as error:
            recipes.validate(raw)
        assert str(error.value).startswith(f"recipe: {message}"), error.value

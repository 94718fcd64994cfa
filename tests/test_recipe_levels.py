"""A recipe's own levels (`levels: {N: {like: M, field: value}}`) and a stage's level shares
(`data.shares`): real generation through the recipe, every stage seeing the same levels, clear
errors, and recipes without them hashing and generating exactly as before."""

import hashlib
import json
import re
from collections import Counter
from pathlib import Path

import pytest
import yaml

from r1kit import data, recipe as recipes, tasks
from r1kit.cli import main
from r1kit.errors import R1kitError
from r1kit.pipeline import Run, stage_hash
from r1kit.rundir import RunDir
from r1kit.stages.common import stage_data
from r1kit.stages.pretrain import base_cache
from r1kit.tasks.arithmetic import LEVELS

FIVE_TERMS = {5: {"like": 3, "terms": [5, 5]}}  # level 3's numbers and operations with 5 terms


def recipe(levels=None, stages=None, **top):
    raw = {"name": "levels", "model": {"preset": "tiny-1m"}, **({"levels": levels} if levels else {}), **top,
           "stages": stages or [{"name": "sft", "kind": "sft", "data": {"levels": [1, 2, 3, 5], "count": 400}}]}
    return recipes.validate(raw)


def error_of(**raw) -> str:
    with pytest.raises(R1kitError) as caught:
        recipe(**raw)
    return str(caught.value)


# ---------------------------------------------------------------- levels by their parameters


def test_a_level_like_3_with_five_terms_draws_five_literals_of_level_3():
    task = recipe(FIVE_TERMS).task_for()
    problems = data.generate(task, [5], 200, seed=0)
    assert len(problems) == 200 and {p.level for p in problems} == {5}
    for p in problems:
        literals = [int(n) for n in re.findall(r"\d+", p.question)]
        assert len(literals) == 5 and max(literals) <= 20, p.question
        assert set(re.sub(r"[\d\s()]", "", p.question)) <= set("+-*"), p.question
        assert p.answer == str(eval(p.question))  # noqa: S307 (our own generated integer expression)
    assert any("*" in p.question for p in problems) and any("(" in p.question for p in problems)
    # the registry's shared task is untouched: its level 5 is still the default one
    assert tasks.get("arithmetic").level_specs[5] == LEVELS[5]
    assert data.generate("arithmetic", [5], 5, seed=0) != problems[:5]
    # a configured task passes through tasks.get as it is; options cannot rebuild it
    assert tasks.get(task) is task
    with pytest.raises(R1kitError, match="already built"):
        tasks.get(task, granularity="digit")


def test_the_recipe_holds_each_level_in_full_and_like_reads_a_level_defined_before():
    loaded = recipe({7: {"terms": [4, 4], "max_value": 20, "ops": "+-*", "max_depth": 2}, 8: {"like": 7, "ops": "+-"}},
                    stages=[{"name": "sft", "kind": "sft", "data": {"levels": [7, 8], "count": 40}}])
    assert loaded.levels[8] == {"terms": (4, 4), "max_value": 20, "ops": "+-", "max_depth": 2, "negatives": 0.0,
                                "decimals": 0.0, "exact_division": True}
    task = loaded.task_for()
    assert task.levels == (1, 2, 3, 4, 5, 6, 7, 8)
    assert all(set(re.sub(r"[\d\s()]", "", p.question)) <= set("+-") for p in data.generate(task, [8], 30, seed=1))


def test_redefining_a_level_replaces_it_for_every_stage():
    loaded = recipe({2: {"like": 2, "ops": "+"}}, stages=[{"name": "sft", "kind": "sft", "data": {"levels": 2, "count": 30}}])
    assert all("-" not in p.question and "*" not in p.question for p in data.generate(loaded.task_for(), [2], 30, seed=0))


def test_countdown_and_linear_define_levels_through_the_same_mechanism():
    countdown = recipe({5: {"like": 2, "numbers": 5}}, task="countdown",
                       stages=[{"name": "sft", "kind": "sft", "data": {"levels": 5, "count": 4}}]).task_for()
    assert all(len(p.metadata["numbers"]) == 5 for p in data.generate(countdown, [5], 4, seed=0))
    linear = recipe({5: {"like": 1, "solution": [30, 40]}}, task="linear",
                    stages=[{"name": "sft", "kind": "sft", "data": {"levels": 5, "count": 10}}]).task_for()
    assert all(30 <= int(p.answer) <= 40 for p in data.generate(linear, [5], 10, seed=0))


@pytest.mark.parametrize(("levels", "message"), [
    ({5: {"like": 3, "term": [5, 5]}}, "levels.5: unknown key 'term' (did you mean 'terms'?); arithmetic levels have: "
                                       "like, terms, max_value, ops"),
    ({5: {"like": 9, "terms": [5, 5]}}, "levels.5: like: 9 is not a level of arithmetic (levels 1, 2, 3, 4, 5, 6); "
                                        "define that level before this one"),
    ({5: {"like": 8}, 8: {"like": 1}}, "levels.5: like: 8 is not a level of arithmetic"),
    ({5: {"terms": [5, 5]}}, "levels.5: needs max_value, ops (or like: N, to start from level N)"),
    ({5: {"like": 3, "terms": [1, 5]}}, "levels.5: terms must satisfy 2 <= min <= max <= 12, got (1, 5)"),
    ({5: {"like": 3, "ops": "+^"}}, "levels.5: max_value must be >= 2 and ops a non-empty subset of '+-*/'"),
    ({5: {"like": 3, "max_value": "big"}}, "levels.5.max_value: input should be a valid integer"),
    ({5: "hard"}, "levels.5: must be a mapping"),
])
def test_a_bad_level_is_one_clear_error(levels, message):
    assert message in error_of(levels=levels)


def test_levels_need_a_task_with_a_level_table_and_stages_need_defined_levels():
    assert "task 'reverse' has no level parameters" in error_of(levels={4: {"like": 1}}, task="reverse",
                                                                stages=[])
    assert "stages.sft.data: arithmetic has levels 1..6, got 8" in error_of(
        stages=[{"name": "sft", "kind": "sft", "data": {"levels": [1, 8]}}])
    assert "stages.sft.data: arithmetic has levels 1..6, 9, got 7" in error_of(
        levels={9: {"like": 6}}, stages=[{"name": "sft", "kind": "sft", "data": {"levels": "1-9"}}])


def test_set_reaches_a_level_by_its_number(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("name: r\nmodel: {preset: tiny-1m}\nlevels:\n  5: {like: 3, terms: [5, 5]}\n"
                    "stages:\n  - {name: sft, kind: sft, data: {levels: [1, 5], shares: {5: 0.1}}}\n")
    loaded = recipes.load(path, ["levels.5.terms=[6, 6]", "stages.sft.data.shares.5=0.2", "levels.7.like=5"])
    assert loaded.levels[5]["terms"] == (6, 6) and loaded.levels[5]["max_value"] == 20  # `like: 3` kept
    assert loaded.levels[7] == loaded.levels[5] and loaded.stage("sft").data.shares == {5: 0.2}


# ---------------------------------------------------------------- shares


def test_shares_give_the_stated_counts_and_the_rest_splits_evenly():
    assert data.per_level(1000, [1, 2, 3, 5], {5: 0.02}) == {1: 327, 2: 327, 3: 326, 5: 20}
    assert data.per_level(10, [1, 2, 3], {1: 0.5, 2: 0.25, 3: 0.25}) == {1: 5, 2: 3, 3: 2}
    assert data.per_level(7, [1, 2, 3, 4], {1: 0.3, 2: 0.3, 3: 0.3}) == {1: 2, 2: 2, 3: 2, 4: 1}
    assert data.per_level(100, [1, 2], {1: 0.29}) == {1: 29, 2: 71}  # not 28: 0.29 * 100 is 28.999…
    assert data.per_level(2, [1, 2, 3, 4], {1: 0.3, 2: 0.3, 3: 0.3}) == {1: 1, 2: 1, 3: 0, 4: 0}  # adds up
    assert data.per_level(9, [1, 2, 3]) == {1: 3, 2: 3, 3: 3}  # without shares: as before


def test_a_stage_with_shares_trains_on_exactly_its_shares(tmp_path):
    loaded = recipe(FIVE_TERMS, stages=[{"name": "sft", "kind": "sft",
                                         "data": {"levels": [1, 2, 3, 5], "count": 1000, "shares": {5: 0.02}}}])
    rows = stage_data(RunDir(loaded, tmp_path), loaded.stage("sft"), style="compact")
    assert Counter(rows["level"]) == {1: 327, 2: 327, 3: 326, 5: 20}
    level5 = [q for q, level in zip(rows["question"], rows["level"]) if level == 5]
    assert all(len(re.findall(r"\d+", q)) == 5 for q in level5)


@pytest.mark.parametrize(("shares", "message"), [
    ({4: 0.1}, "shares name level(s) [4] that are not in levels [1, 2, 3]"),
    ({1: 0.0}, "each share must be above 0 and below 1, got {1: 0.0}"),
    ({1: 1.0}, "each share must be above 0 and below 1"),
    ({1: 0.6, 2: 0.5}, "shares add up to 1.1, leaving nothing for levels [3]"),
    ({1: 0.5, 2: 0.25, 3: 0.2}, "shares name every level, so they must add up to 1, got 0.95"),
])
def test_bad_shares_are_one_clear_error(shares, message):
    stages = [{"name": "sft", "kind": "sft", "data": {"levels": "1-3", "shares": shares}}]
    assert f"stages.sft.data: {message}" in error_of(stages=stages)


# ---------------------------------------------------------------- every stage sees the levels


def test_an_eval_stage_reports_the_recipe_level(tmp_path):
    from r1kit.models import build_char_tokenizer, build_tiny_model, save_model

    tokenizer = build_char_tokenizer()
    save_model(build_tiny_model("tiny-1m", tokenizer), tokenizer, tmp_path / "m",
               prompt_info={"style": "compact", "chat": False})
    loaded = recipe(FIVE_TERMS, model={"path": str(tmp_path / "m")}, stages=[
        {"name": "eval", "kind": "eval", "data": {"levels": [1, 5], "count": 12, "shares": {5: 0.25}},
         "max_new_tokens": 4}, {"name": "report", "kind": "report"}])
    results = Run(loaded, tmp_path / "run").execute()
    assert {row["level"]: row["n"] for row in results["evals"]} == {1: 9, 5: 3, "all": 12}
    problems = json.loads((tmp_path / "run" / "stages" / "eval" / "eval.json").read_text())["problems"]["model"]
    assert all(len(re.findall(r"\d+", p["question"])) == 5 for p in problems if p["level"] == 5)
    report = (tmp_path / "run" / "report.md").read_text()  # what the level 5 column means
    assert "| level | terms | max_value | ops | max_depth |" in report and "| 5 | 5–5 | 20 | +-* | 1 |" in report


def test_a_collection_records_the_recipe_levels_it_draws_so_a_changed_level_does_not_resume():
    from r1kit.teachers.collect import own_levels

    task = recipe(FIVE_TERMS).task_for()
    assert own_levels(task, [1, 5], {5: 0.5}) == {"level_params": {"5": {**recipe(FIVE_TERMS).levels[5], "terms": [5, 5]}},
                                                  "shares": {"5": 0.5}}
    assert own_levels(task, [1, 2], None) == {} == own_levels(tasks.get("arithmetic"), [1, 5], None)


def test_stages_drawing_a_recipe_level_hash_it_and_the_others_keep_their_hash(tmp_path):
    stages = [{"name": "base", "kind": "pretrain", "data": {"levels": "1-3", "count": 100}},
              {"name": "sft", "kind": "sft", "from": "base", "data": {"levels": [1, 5], "count": 100}},
              {"name": "eval", "kind": "eval", "models": ["base"], "data": {"levels": "1-3"}}]
    plain, five = recipe(None, stages=stages), recipe(FIVE_TERMS, stages=stages)
    harder = recipe({5: {"like": 3, "terms": [6, 6]}}, stages=stages)
    hashes = {name: {s.name: stage_hash(r, s) for s in r.stages} for name, r in
              (("plain", plain), ("five", five), ("harder", harder))}
    assert hashes["plain"]["base"] == hashes["five"]["base"] and hashes["plain"]["eval"] == hashes["five"]["eval"]
    assert len({hashes[name]["sft"] for name in hashes}) == 3  # level 5's parameters are part of sft's hash
    pretrain = [{"name": "base", "kind": "pretrain", "data": {"levels": [1, 5], "count": 100}}]
    keys = {base_cache(RunDir(r, tmp_path), r.stage("base")).name
            for r in (recipe(None, stages=pretrain), recipe(FIVE_TERMS, stages=pretrain), recipe(
                {5: {"like": 3, "terms": [6, 6]}}, stages=pretrain))}
    assert len(keys) == 3  # a cached base is never reused for other level parameters


def test_print_config_and_r1kit_levels_show_the_recipe_levels(tmp_path, capsys):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump({"name": "r", "model": {"preset": "tiny-1m"}, "levels": FIVE_TERMS,
                                    "stages": [{"name": "sft", "kind": "sft", "data": {"levels": [1, 5]}}]}))
    assert main(["run", str(path), "--print-config"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["levels"] == {"5": {"terms": [5, 5], "max_value": 20, "ops": "+-*", "max_depth": 1,
                                       "negatives": 0.0, "decimals": 0.0, "exact_division": True}}
    assert recipes.validate(printed) == recipes.load(path)  # what it prints loads to the same recipe
    assert main(["levels", "--recipe", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[4] == ("5: {terms: [5, 5], max_value: 20, ops: +-*, max_depth: 1, negatives: 0.0, decimals: 0.0, "
                        "exact_division: true}  # this recipe's")
    assert len(lines) == 6 and "#" not in lines[5]
    assert main(["levels", "countdown"]) == 0
    assert capsys.readouterr().out.startswith("1: {numbers: 3, large: 0, target: [10, 199], min_steps: 2, small: 20}\n")


# ---------------------------------------------------------------- recipes without them: exactly as before

# Computed at 7b8dc06, before recipe levels and shares existed.
QUICKSTART_HASHES = {
    False: {"base": "9e6e827514d1909c", "sft": "6e90007a9da1c622", "grpo": "65074721c0a57141",
            "eval": "98675b51ca1800c7", "report": "911a167d4d34795e"},  # eval: k 8, sample_count 100 since b048fa9
    True: {"base": "c1378b4c739321b8", "sft": "5f34059181874223", "grpo": "dccc3f3b44677e19",
           "eval": "d1be73ea6ff4ba2e", "report": "911a167d4d34795e"},
}
QUICKSTART_SMOKE_DATA = {"base": "01d25502335cd1a3", "sft": "4d4e3103fa843014", "grpo": "6f2960f2db57b4c3"}


def digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


@pytest.mark.parametrize("smoke", [False, True])
def test_quickstart_stage_hashes_are_unchanged(smoke):
    loaded = recipes.load("recipes/quickstart.yaml", smoke=smoke)
    assert {s.name: stage_hash(loaded, s) for s in loaded.stages} == QUICKSTART_HASHES[smoke]


def test_quickstart_data_and_base_cache_key_are_unchanged(tmp_path):
    loaded = recipes.load("recipes/quickstart.yaml", smoke=True)
    run = RunDir(loaded, tmp_path)
    assert base_cache(run, loaded.stage("base")).name == "f909438d50db3f20"
    for name, style in (("base", "answer"), ("sft", "compact"), ("grpo", "compact")):
        assert digest(stage_data(run, loaded.stage(name), style=style).to_list()) == QUICKSTART_SMOKE_DATA[name], name
    evaluated = data.generate("arithmetic", [1, 2, 3, 4], 400, 0)
    assert digest([f"{p.question}={p.answer}" for p in evaluated]) == "df80dc441d2e749f"


@pytest.mark.parametrize("path", sorted((Path(__file__).resolve().parents[1] / "benchmarks" / "rl_recipes").glob("*.yaml")),
                         ids=lambda p: p.stem)
def test_the_rl_experiment_recipes_load(path):
    """benchmarks/rl_signal.md's runs are reproducible: each recipe validates, its GRPO stage takes
    2,048 rollouts a step, and a recipe-defined level is drawn as defined."""
    recipe = recipes.load(path)
    grpo = next(stage for stage in recipe.stages if stage.kind == "grpo")
    train = grpo.train
    assert train["per_device_train_batch_size"] * train["gradient_accumulation_steps"] == 2048
    for number in recipe.levels or {}:
        task = recipe.task_for(grpo.data)
        assert task.generate(5, seed=0, level=number)

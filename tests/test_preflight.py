"""Preflight: every input we can check is checked before any work, and a bad one ends in one
`error:` line, exit 1 (2 for a wrong command line), and nothing written (no run directory, no ledger row, no temp file)."""

from importlib.resources import files

import pytest

from r1kit import recipe as recipes
from r1kit.cli import main
from r1kit.errors import R1kitError

QUICKSTART = str(files("r1kit") / "recipes" / "quickstart.yaml")
NOT_UTF8 = b'{"question": "1+\xff", "answer": "1"}\n'


@pytest.fixture
def cwd(tmp_path, monkeypatch):
    """An empty working directory holding only the inputs a test writes."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.jsonl").write_bytes(NOT_UTF8)
    (tmp_path / "bad.yaml").write_bytes(b"name: x\n# caf\xe9 (latin-1)\n")
    (tmp_path / "afile").write_text("x")
    (tmp_path / "adir").mkdir()
    (tmp_path / "adir" / "kept").write_text("x")
    return tmp_path


def listing(path):
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


USAGE_ERRORS = ("Invalid value", "No such option", "Missing")  # click's: the command line is wrong


def fails(capsys, args, message="") -> str:
    """The one error line `r1kit ARGS` prints (after asserting its exit code and nothing else)."""
    assert main(args) == (2 if message.startswith(USAGE_ERRORS) else 1)
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("args, message", [
    (["run", "bad.yaml"], "recipe bad.yaml is not UTF-8 text"),
    (["data", "build", "--task", "jsonl:bad.jsonl", "--levels", "1", "--count", "2", "--out", "X"],
     "task file bad.jsonl is not UTF-8 text"),
    (["eval", "--model", "m", "--data", "bad.jsonl"], "--data bad.jsonl is not UTF-8 text"),
    (["eval", "--model", "m", "--task", "jsonl:bad.jsonl", "--levels", "1"], "task file bad.jsonl is not UTF-8"),
    (["distill", "collect", "--teacher", "openai:m", "--task", "jsonl:bad.jsonl", "--out", "X"],
     "task file bad.jsonl is not UTF-8 text"),
    (["data", "build", "--levels", "1-99999999999", "--out", "X"], "bad levels '1-99999999999': levels go up to"),
    (["data", "build", "--count", "99999999999999999999", "--out", "X"], "Invalid value for '--count'"),
    (["data", "build", "--count", "3000000", "--out", "X"], "--count 3,000,000 is over 2,000,000 rows"),
    (["data", "build", "--workers", "0", "--out", "X"], "--workers must be at least 1, got 0"),
    (["data", "build", "--count", "10", "--out", "afile"], "afile exists and is not a directory"),
    (["data", "build", "--count", "10", "--out", "afile/sub"], "--out afile/sub: "),
    (["data", "build", "--count", "10", "--out", "adir"], "adir exists and is not empty"),
    (["eval", "--model", "m", "--json", "adir"], "adir is a directory; --json names a file"),
    (["eval", "--model", "m", "--json", "afile/r.json"], "--json afile/r.json: "),
    (["eval", "--model", "m", "--max-new-tokens", "0"], "Invalid value for '--max-new-tokens'"),
    (["eval", "--model", "m", "--k", "0"], "Invalid value for '--k'"),
    (["eval", "--model", "m", "--k", "-2"], "Invalid value for '--k'"),
    (["eval", "--model", "m", "--batch-size", "0"], "Invalid value for '--batch-size'"),
    (["eval", "--model", "m", "--count", "99999999999999999999"], "Invalid value for '--count'"),
    (["distill", "collect", "--teacher", "openai:m", "--out", "afile"], "afile exists and is not a directory"),
    (["distill", "collect", "--teacher", "openai:m", "--count", "0", "--out", "X"], "Invalid value for '--count'"),
    (["distill", "collect", "--teacher", "openai:m", "--min-step-score", "2", "--out", "X"],
     "Invalid value for '--min-step-score'"),
    (["serve", "--model", "m", "--port", "70000"], "Invalid value for '--port'"),
    (["run", QUICKSTART, "--set", "stages.grpo.train.num_generations=3", "--out", "X"],
     "stages.grpo.train: generation_batch_size (64) must be divisible by num_generations (3)"),
    (["run", QUICKSTART, "--smoke", "--set", "stages.grpo.train.num_generations=3", "--out", "X"],
     "must be divisible by num_generations (3)"),
    (["run", QUICKSTART, "--set", "model.preset=null", "--set", "model.path=./no/such/model", "--out", "X"],
     "model.path: './no/such/model' does not exist"),
])
def test_bad_input_fails_before_anything_is_written(cwd, capsys, args, message):
    before = listing(cwd)
    err = fails(capsys, args, message)
    assert err.removeprefix("error: ").startswith(message) or message in err, err
    assert listing(cwd) == before  # no run directory, no ledger, no hidden temp file


def test_a_missing_model_path_is_reported_before_a_run_directory_or_ledger(cwd, capsys):
    (cwd / "r.yaml").write_text("name: r\nmodel: {path: ./models/missing}\nstages:\n"
                                "  - {name: sft, kind: sft, data: {count: 10}}\n"
                                "  - {name: eval, kind: eval, models: [sft]}\n")
    err = fails(capsys, ["run", "r.yaml", "--out", "runs/r"])
    assert "model.path: './models/missing' does not exist" in err
    assert not (cwd / "runs").exists()


def grpo(train: dict, **stage) -> dict:
    return {"name": "g", "model": {"preset": "tiny-1m"},
            "stages": [{"name": "base", "kind": "pretrain"}, {"name": "grpo", "kind": "grpo", "from": "base",
                                                              "train": train, **stage}]}


@pytest.mark.parametrize("train, processes, message", [  # TRL's own checks, then the process count's
    ({"per_device_train_batch_size": 8, "num_generations": 3}, 1,
     r"stages.grpo.train: generation_batch_size \(8\) must be divisible by num_generations \(3\)"),
    ({"per_device_train_batch_size": 6, "num_generations": 4}, 3,
     r"stages.grpo.train \(x 3 processes\): generation_batch_size \(18\) must be divisible by num_generations \(4\)"),
    ({"per_device_train_batch_size": 8, "num_generations": 3, "gradient_accumulation_steps": 2}, 1, r"\(16\) must"),
    ({"per_device_train_batch_size": 8, "generation_batch_size": 12, "num_generations": 4}, 1,
     r"generation_batch_size \(12\) must be divisible by the global batch size \(8\)"),
    ({"per_device_train_batch_size": 4, "generation_batch_size": 12, "num_generations": 4}, 2,
     r"generation_batch_size \(12\) must be divisible by the global batch size \(8\)"),
    ({"per_device_train_batch_size": 8, "generation_batch_size": 24, "num_generations": 16}, 1,
     r"generation_batch_size \(24\) must be divisible by num_generations \(16\)"),
    ({"generation_batch_size": 64, "steps_per_generation": 2}, 1, "can not be both configured"),
    ({"num_generations": 1}, 1, "at least 2 generations per prompt"),
    ({"auto_find_batch_size": True}, 1, "auto_find_batch_size is not supported"),
])
def test_grpo_batches_trl_would_reject_fail_at_validation(train, processes, message):
    with pytest.raises(R1kitError, match=message):
        recipes.validate(grpo(train), processes=processes)


@pytest.mark.parametrize("train, processes", [
    ({}, 1),  # r1kit's defaults: 64 x 1, 8 generations
    ({"per_device_train_batch_size": 6, "num_generations": 4}, 2),  # 12 completions a step: 3 whole groups
    ({"per_device_train_batch_size": 8, "num_generations": 3, "gradient_accumulation_steps": 3}, 1),
    ({"per_device_train_batch_size": 8, "num_generations": 3, "steps_per_generation": 3}, 1),
    ({"per_device_train_batch_size": 8, "generation_batch_size": 24, "num_generations": 3}, 1),
])
def test_grpo_batches_trl_accepts_pass(train, processes):
    recipes.validate(grpo(train), processes=processes)


@pytest.mark.parametrize("train, message", [
    ({"max_step": 3}, r"unknown key 'stages.grpo.train.max_step' \(not a GRPOConfig field\) \(did you mean 'max_steps'"),
    ({"learning_rate": "fast"}, r"stages.grpo.train.learning_rate: input should be a valid number, got 'fast'"),
    ({"max_steps": True}, r"stages.grpo.train.max_steps: input should be a valid integer"),
    ({"bf16": "yes"}, r"stages.grpo.train.bf16: input should be a valid boolean"),
    ({"learning_rate": 0}, r"stages.grpo.train.learning_rate must be positive, got 0"),
    ({"max_steps": 0}, r"stages.grpo.train.max_steps must be at least 1, got 0"),
    ({"lr_scheduler_type": "cosin"}, r"stages.grpo.train: cosin is not a valid SchedulerType, please select one of \['linear', 'cosine'"),
])
def test_train_values_are_checked_by_type_and_by_trl(train, message):
    with pytest.raises(R1kitError, match=message):
        recipes.validate(grpo(train))


def test_the_validated_config_is_the_trained_one(tmp_path):
    """One builder: the recipe's values and r1kit's defaults reach the TRL config, set once."""
    from r1kit.train.config import trainer_config

    config = trainer_config("grpo", {"learning_rate": 5e-5}, output_dir=tmp_path, reward_weights=[1.0, 0.5])
    assert (config.learning_rate, config.logging_steps, config.num_generations) == (5e-5, 5, 8)
    assert config.reward_weights == [1.0, 0.5] and config.generation_batch_size == 64
    assert trainer_config("grpo", {}, output_dir=tmp_path, budgeted=True).logging_steps == 1
    assert trainer_config("grpo", {"logging_steps": 3}, output_dir=tmp_path, budgeted=True).logging_steps == 3
    sft = trainer_config("sft", {}, output_dir=tmp_path, completion_only=False)
    assert (sft.logging_steps, sft.learning_rate, sft.completion_only_loss) == (10, 1e-3, False)


def test_recipe_files_read_later_are_checked_now(tmp_path):
    (tmp_path / "bad.jsonl").write_bytes(NOT_UTF8)
    bad = str(tmp_path / "bad.jsonl")
    recipe = {"name": "e", "model": {"preset": "tiny-1m"}, "stages": [{"name": "eval", "kind": "eval"}]}
    with pytest.raises(R1kitError, match="task file .* is not UTF-8 text"):
        recipes.validate({**recipe, "task": f"jsonl:{bad}"})
    with pytest.raises(R1kitError, match=r"stages.eval.jsonl .* is not UTF-8 text \(invalid start byte near byte 16\)"):
        recipes.validate({**recipe, "stages": [{"name": "eval", "kind": "eval", "jsonl": bad}]})
    with pytest.raises(R1kitError, match="cannot read task file"):
        recipes.validate({**recipe, "task": f"jsonl:{tmp_path / 'missing.jsonl'}"})


def test_a_hub_id_is_left_to_the_hub():
    recipes.validate({"name": "h", "model": {"path": "Qwen/Qwen2.5-0.5B-Instruct"},
                      "stages": [{"name": "eval", "kind": "eval"}]})


def test_levels_are_bounded_before_they_are_expanded():
    from r1kit.data import MAX_LEVEL, parse_levels

    assert parse_levels(f"1-3,{MAX_LEVEL}") == [1, 2, 3, MAX_LEVEL]
    for spec in ("1-99999999999", f"{MAX_LEVEL + 1}", [10**12]):
        with pytest.raises(R1kitError, match="levels go up to"):
            parse_levels(spec)


def test_numbers_without_a_dot_are_numbers(tmp_path):
    """YAML 1.1 reads `5e-5` as a string; in a recipe file and in `--set` it is the number."""
    loaded = recipes.load(QUICKSTART, ["stages.grpo.train.learning_rate=5e-5", "stages.sft.train.learning_rate=1E-3"])
    assert loaded.stage("grpo").train["learning_rate"] == 5e-5 and loaded.stage("sft").train["learning_rate"] == 1e-3
    text = (tmp_path / "r.yaml")
    text.write_text(open(QUICKSTART).read().replace("learning_rate: 0.00002", "learning_rate: 2e-5"))
    assert recipes.load(text).stage("grpo").train["learning_rate"] == 2e-5
    assert recipes.read_yaml("[e5, 1_000, 0x1f, '3e2']") == ["e5", 1000, 31, "3e2"]  # the rest as YAML has it

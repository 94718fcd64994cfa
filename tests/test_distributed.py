"""Several processes, one run directory: the real `accelerate launch` path on 2 CPU processes
(gloo), and the plumbing that cannot run here (ZeRO-3/FSDP saves, vLLM)."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from datasets import load_from_disk

from r1kit import distributed, engines, ledger
from r1kit import recipe as recipes
from r1kit.errors import R1kitError
from r1kit.engines import GenerationSettings

RECIPE = """
name: two-proc
model: {preset: tiny-1m}
stages:
  - name: base
    kind: pretrain
    data: {levels: 1-2, count: 200, style: answer}
    train: {max_steps: 3, per_device_train_batch_size: 8, logging_steps: 1}
  - name: sft
    kind: sft
    from: base
    data: {levels: 1-2, count: 200}
    train: {max_steps: 6, per_device_train_batch_size: 8, learning_rate: 0.003, logging_steps: 1}
  - name: grpo                 # 4 prompts x 2 ranks = 8 completions: divisible by num_generations
    kind: grpo
    from: sft
    data: {levels: 1-2, count: 32}
    rewards: {accuracy: 1.0}
    train: {max_steps: 2, per_device_train_batch_size: 4, num_generations: 4, max_completion_length: 16, logging_steps: 1}
  - {name: eval, kind: eval, models: [base, sft, grpo], data: {levels: 1-2, count: 8}, retention: false, max_new_tokens: 24}
  - {name: report, kind: report}
"""
STAGES = ["base", "sft", "grpo", "eval", "report"]


def r1kit(*args, env=None):
    return subprocess.run([sys.executable, "-m", "r1kit", *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def launched(tmp_path_factory):
    root = tmp_path_factory.mktemp("dist")
    (root / "recipe.yaml").write_text(RECIPE)
    config = yaml.safe_load(distributed.resolve_config("cpu").read_text())
    config["main_process_port"] = free_port()  # a config file path, and no clash with other runs
    (root / "accelerate.yaml").write_text(yaml.safe_dump(config))
    command = ["run", str(root / "recipe.yaml"), "--out", str(root / "run"), "--launcher", "accelerate",
               "--num-processes", "2", "--accelerate-config", str(root / "accelerate.yaml")]
    env = {"R1KIT_CACHE": str(root / "cache")}
    result = r1kit(*command, env=env)
    assert result.returncode == 0, result.stderr[-4000:]
    return root, command, env, result


def test_two_processes_write_one_set_of_artifacts(launched):
    root, _, _, _ = launched
    out = root / "run"
    assert json.loads((out / "manifest.json").read_text())["processes"] == 2
    for name in STAGES:
        assert (out / "stages" / name / "done.json").is_file()
    for name in ("base", "sft", "grpo"):
        model = out / "stages" / name / "model"
        assert (model / "config.json").is_file() and (model / "r1kit.json").is_file()
        steps = [json.loads(line)["step"] for line in (out / "stages" / name / "metrics.jsonl").read_text().splitlines()
                 if "loss" in json.loads(line)]
        assert steps and len(steps) == len(set(steps))  # rank 0 alone logs: no duplicate rows
    assert not list(out.rglob(".*.tmp*")) and not list(out.rglob(".*.gathered"))
    results = json.loads((out / "results.json").read_text())
    losses = [row["loss"] for row in results["curves"]["sft"] if "loss" in row]
    assert len(losses) == 6 and losses[-1] < losses[0]
    assert {row["model"] for row in results["evals"]} == {"base", "sft", "grpo"}
    assert json.loads((out / "stages" / "eval" / "eval.json").read_text())["models"].keys() == {"base", "sft", "grpo"}


def test_every_rank_is_metered_and_each_attempt_counted_once(launched):
    root, _, _, _ = launched
    spent = json.loads((root / "run" / "results.json").read_text())["ledger"]
    assert sorted((r["stage"], r["rank"]) for r in spent["attempts"]) == sorted((s, r) for s in STAGES for r in (0, 1))
    for stage in spent["stages"]:
        rows = [r for r in spent["attempts"] if r["stage"] == stage["stage"]]
        assert stage["attempts"] == 1 and len({r["attempt"] for r in rows}) == 1
        assert stage["wall_s"] == pytest.approx(sum(r["wall_s"] for r in rows))
    sft_rows = {r["rank"]: r for r in spent["attempts"] if r["stage"] == "sft"}
    tokens = [row["num_tokens"] for row in json.loads((root / "run" / "results.json").read_text())["curves"]["sft"]
              if "num_tokens" in row][-1]
    assert sft_rows[0]["train_tokens"] == tokens and sft_rows[1]["train_tokens"] == 0  # global count, once
    assert sft_rows[1]["wall_s"] > 0


def test_rerun_under_the_launcher_resumes_on_every_rank(launched):
    root, command, env, _ = launched
    before = sorted(p.name for p in (root / "run" / "ledger").iterdir())
    again = r1kit(*command, env=env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert (again.stdout + again.stderr).count("already done") == len(STAGES)  # all skipped; rank 0 alone prints
    assert sorted(p.name for p in (root / "run" / "ledger").iterdir()) == before


def test_same_shape_as_a_single_process_run(launched, tmp_path, monkeypatch):
    from r1kit.pipeline import Run

    root, _, _, _ = launched
    monkeypatch.setenv("R1KIT_CACHE", str(root / "cache"))  # the base model the launched run cached
    single = Run(recipes.validate(yaml.safe_load(RECIPE)), tmp_path / "single").execute()
    double = json.loads((root / "run" / "results.json").read_text())
    assert [r["stage"] for r in single["ledger"]["stages"]] == [r["stage"] for r in double["ledger"]["stages"]]
    # The same rows trained on and the same held-out problems asked, whatever the process count.
    for stage in ("sft", "grpo"):  # (the single run took the launched run's cached base)
        one, two = (load_from_disk(str(d / "stages" / stage / "data"))["question"] for d in (tmp_path / "single", root / "run"))
        assert one == two and len(one) > 0
    asked = [json.loads((d / "stages" / "eval" / "eval.json").read_text())["problems"] for d in (tmp_path / "single", root / "run")]
    assert {m: [r["id"] for r in rows] for m, rows in asked[0].items()} == {m: [r["id"] for r in rows] for m, rows in asked[1].items()}
    assert [r["n"] for r in single["evals"]] == [r["n"] for r in double["evals"]]
    # Every stage ran its configured steps in both.
    for stage, steps in (("sft", 6), ("grpo", 2)):
        assert max(r["step"] for r in single["curves"][stage]) == max(r["step"] for r in double["curves"][stage]) == steps


# ---------------------------------------------------------------- launching


def test_shipped_configs_and_their_backends():
    kinds = {name: yaml.safe_load(distributed.resolve_config(name).read_text())["distributed_type"]
             for name in ("ddp", "zero2", "zero3", "fsdp", "cpu")}
    assert kinds == {"ddp": "MULTI_GPU", "zero2": "DEEPSPEED", "zero3": "DEEPSPEED", "fsdp": "FSDP", "cpu": "MULTI_GPU"}
    zero3 = yaml.safe_load(distributed.resolve_config("zero3.yaml").read_text())["deepspeed_config"]
    assert zero3["zero_stage"] == 3 and zero3["zero3_save_16bit_model"]  # full weights on save
    fsdp = yaml.safe_load(distributed.resolve_config("fsdp").read_text())["fsdp_config"]
    assert fsdp["fsdp_state_dict_type"] == "FULL_STATE_DICT"
    assert (Path(__file__).parents[1] / "recipes" / "accelerate" / "zero3.yaml").is_file()


def test_launch_command(tmp_path):
    command = distributed.launch_command(["run", "r.yaml", "--smoke"], num_processes=2, config="cpu")
    assert command[:3] == [sys.executable, "-m", "accelerate.commands.launch"]
    assert command[command.index("--config_file") + 1] == str(distributed.resolve_config("cpu"))
    assert command[command.index("--num_processes") + 1] == "2"
    assert command[-5:] == ["-m", "r1kit", "run", "r.yaml", "--smoke"]
    own = tmp_path / "mine.yaml"
    own.write_text("distributed_type: MULTI_GPU\n")
    assert str(own) in distributed.launch_command(["run", "r.yaml"], config=str(own))


def test_launch_errors_are_one_clear_message(monkeypatch):
    with pytest.raises(R1kitError, match="no accelerate config 'zero4'.*cpu, ddp, fsdp, zero2, zero3"):
        distributed.launch_command(["run", "r.yaml"], config="zero4")
    with pytest.raises(R1kitError, match="at least 1"):
        distributed.launch_command(["run", "r.yaml"], num_processes=0, config="cpu")
    real = distributed.find_spec
    monkeypatch.setattr(distributed, "find_spec", lambda name: None if name == "deepspeed" else real(name))
    with pytest.raises(R1kitError, match="zero3.yaml uses DeepSpeed, which is not installed: pip install deepspeed"):
        distributed.launch_command(["run", "r.yaml"], config="zero3")
    monkeypatch.setattr(distributed, "find_spec", lambda name: None)
    with pytest.raises(R1kitError, match="needs accelerate: pip install accelerate"):
        distributed.launch_command(["run", "r.yaml"], config="cpu")


def test_cli_launcher_errors(tmp_path, capsys):
    from r1kit.cli import main

    path = tmp_path / "r.yaml"
    path.write_text(RECIPE)
    assert main(["run", str(path), "--launcher", "slurm"]) == 2  # a wrong command line
    assert "Invalid value for '--launcher': 'slurm' is not one of 'none', 'accelerate'" in capsys.readouterr().err
    assert main(["run", str(path), "--launcher", "accelerate", "--accelerate-config", "nope"]) == 1
    assert "error: no accelerate config 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_sharded_saves_go_through_the_trainer(tmp_path):
    """ZeRO-3/FSDP: `trainer.save_model` gathers the weights; r1kit adds tokenizer and r1kit.json."""
    from types import SimpleNamespace

    from r1kit.models import build_char_tokenizer, build_tiny_model, load_model

    tok = build_char_tokenizer()
    model = build_tiny_model("tiny-1m", tok)
    saved = []

    class Zero3Trainer:
        is_deepspeed_enabled = True
        accelerator = SimpleNamespace(state=SimpleNamespace(deepspeed_plugin=SimpleNamespace(zero_stage=3)))

        def save_model(self, output_dir):
            saved.append(output_dir)
            model.save_pretrained(output_dir)

    out = distributed.save_trained(Zero3Trainer(), tok, tmp_path / "model", prompt_info={"style": "compact", "chat": False})
    assert saved == [str(tmp_path / ".model.gathered")] and not (tmp_path / ".model.gathered").exists()
    assert json.loads((out / "r1kit.json").read_text()) == {"chat": False, "style": "compact"}
    loaded, loaded_tok = load_model(out)
    assert loaded_tok("1+2\n")["input_ids"] == tok("1+2\n")["input_ids"]
    plain = SimpleNamespace(model=model, is_deepspeed_enabled=False, is_fsdp_enabled=False)
    assert not distributed.sharded(plain)
    distributed.save_trained(plain, tok, tmp_path / "again", prompt_info={"style": "compact", "chat": False})
    assert (tmp_path / "again" / "config.json").is_file()


def test_ledger_counts_an_attempt_once_over_ranks(tmp_path):
    for rank in (0, 1):
        with ledger.Meter(tmp_path, "sft", "sft", attempt="abc", rank=rank, world_size=2) as meter:
            meter.add(train_tokens=100 if rank == 0 else 0, parameters=10)
    spent = ledger.read(tmp_path)
    assert sorted(p.name for p in (tmp_path / "ledger").iterdir()) == ["sft-abc-rank0.json", "sft-abc-rank1.json"]
    assert spent["stages"][0]["attempts"] == 1 and spent["total_all"]["train_tokens"] == 100
    assert spent["total_all"]["flops"] == 6 * 10 * 100


# ---------------------------------------------------------------- vLLM


def test_use_vllm_without_vllm_is_an_early_clear_error():
    from r1kit.train.config import trainer_config

    raw = yaml.safe_load(RECIPE)
    raw["stages"][2]["train"].update(use_vllm=True, vllm_mode="server")
    with pytest.raises(R1kitError) as error:
        recipes.validate(raw)
    message = str(error.value)
    assert "stages.grpo.train.use_vllm needs vLLM" in message and "pip install 'r1kit[vllm]'" in message
    assert "trl vllm-serve --model" in message
    with pytest.raises(R1kitError, match="train.use_vllm needs vLLM"):
        trainer_config("grpo", {"use_vllm": True}, output_dir="x")


def test_engine_choice(monkeypatch):
    monkeypatch.setattr(engines, "vllm_available", lambda: True)
    assert engines.choose_engine("auto", cuda=True) == "vllm"
    assert engines.choose_engine("auto", cuda=False) == "hf"
    assert engines.choose_engine("hf", cuda=True) == "hf"
    assert engines.choose_engine("vllm") == "vllm"
    monkeypatch.setattr(engines, "vllm_available", lambda: False)
    assert engines.choose_engine("auto", cuda=True) == "hf"
    with pytest.raises(R1kitError, match="engine: vllm needs vLLM"):
        engines.choose_engine("vllm")
    with pytest.raises(R1kitError, match="unknown engine 'tgi'"):
        engines.choose_engine("tgi")
    assert recipes.validate(yaml.safe_load(RECIPE)).stage("eval").engine == "auto"


def test_sampling_params_match_transformers_generation():
    settings = GenerationSettings(max_new_tokens=64, temperature=0.7, top_p=0.9)
    greedy = engines.sampling_kwargs(settings, samples=1, greedy=True, seed=3, eos_token_id=2)
    assert greedy == {"n": 1, "max_tokens": 64, "seed": 3, "stop_token_ids": [2], "detokenize": False,
                      "temperature": 0.0, "top_p": 1.0}
    sampled = engines.sampling_kwargs(settings, samples=8, greedy=False, seed=3, eos_token_id=2)
    assert sampled["n"] == 8 and sampled["temperature"] == 0.7 and sampled["top_p"] == 0.9
    assert engines.stop_at("12+3=15|answer 15|answer 16", ("|answer 15",), keep=True) == len("12+3=15|answer 15")
    assert engines.stop_at("12+3=15|answer 15|answer 16", ("|answer 15",), keep=False) == len("12+3=15")
    assert engines.stop_at("no stop here", ("</answer>",), keep=True) is None


def test_one_generation_policy_repeats_greedy_and_cuts_stops_as_asked():
    class Echo:  # another engine: the same text for every draw
        def generate_texts(self, tokenizer, prompts, *, samples, greedy, settings, progress=None):
            self.draws = samples
            return [[p + "|answer 1|answer 2"] * samples for p in prompts]

    echo, stop = Echo(), ("|answer 1",)
    assert engines.generate_texts(echo, None, ["a"], samples=3, settings=GenerationSettings(stop=stop)) \
        == [["a|answer 1"] * 3]
    assert echo.draws == 1  # greedy completions are generated once
    dropped = GenerationSettings(stop=stop, keep_stop=False)
    assert engines.generate_texts(echo, None, ["a"], samples=2, greedy=False, settings=dropped) == [["a", "a"]]
    assert echo.draws == 2


def test_evaluation_uses_another_engine_through_generate_texts():
    from r1kit.evaluate import evaluate_model, problems_from_task
    from r1kit.models import build_char_tokenizer

    problems = problems_from_task("arithmetic", [1], 4, 0)
    calls = []

    class Engine:
        def generate_texts(self, tokenizer, prompts, *, samples, greedy, settings, progress=None):
            calls.append((len(prompts), samples, greedy))
            return [[f"|answer {p.answer}"] * samples for p in problems]

    result = evaluate_model(Engine(), build_char_tokenizer(), problems, k=2)
    assert calls == [(4, 1, True), (4, 2, False)]
    assert result.as_dict()["accuracy"] == 1.0 and result.as_dict()["pass@2"] == 1.0

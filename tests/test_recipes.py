"""The real-model recipes run unchanged on a tiny local chat model (same template machinery)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def local_chat_model(tmp_path_factory):
    """A stand-in for Qwen2.5-Instruct: a HF directory with a chat template and no r1kit.json."""
    from r1kit.models import build_char_tokenizer, build_tiny_model

    path = tmp_path_factory.mktemp("hub") / "tiny-instruct"
    tokenizer = build_char_tokenizer()
    model = build_tiny_model("tiny-1m", tokenizer, seed=1)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.mark.parametrize("recipe, models", [("r1-qwen2.5-1.5b", ["model", "sft", "grpo"]),
                                            ("r1-zero-qwen2.5-1.5b", ["model", "grpo"])])
def test_real_model_recipe_runs_on_a_local_model(recipe, models, local_chat_model, tmp_path):
    out = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-c", "from r1kit.cli import run; run()", "run", str(ROOT / "recipes" / f"{recipe}.yaml"),
         "--smoke", "--set", f"model.path={local_chat_model}", "--out", str(out)],
        capture_output=True, text=True, timeout=600, env=os.environ.copy())
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    overall = {row["model"]: row for row in results["evals"] if row["level"] == "all"}
    assert list(overall) == models
    assert all("pass@2" in row and "maj@2" in row for row in overall.values())
    trained = json.loads((out / "stages" / models[-1] / "model" / "r1kit.json").read_text())
    assert trained == {"chat": True, "style": "think"}
    data = (out / "stages" / "grpo" / "data")
    from datasets import load_from_disk

    row = load_from_disk(str(data))[0]
    assert row["prompt"][0]["role"] == "user" and "<think>" in row["prompt"][0]["content"]

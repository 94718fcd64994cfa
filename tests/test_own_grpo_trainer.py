"""The README's "r1kit rewards in your own TRL GRPOTrainer" example (examples/own_grpo_trainer.py)
trains a couple of steps on a tiny model, with r1kit's rewards logged by TRL."""

import importlib.util
from pathlib import Path

from r1kit.models import build_char_tokenizer, build_tiny_model

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "own_grpo_trainer.py"


def load_example():
    spec = importlib.util.spec_from_file_location("own_grpo_trainer", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_r1kit_rewards_train_in_your_own_grpo_trainer(tmp_path):
    tokenizer = build_char_tokenizer()
    model = build_tiny_model("tiny-1m", tokenizer, seed=0)
    trainer = load_example().train(
        model, processing_class=tokenizer, output_dir=str(tmp_path / "out"), levels=(1,), count=40,
        style="compact", chat=False, max_steps=2, per_device_train_batch_size=8, num_generations=4,
        max_completion_length=16, logging_steps=1, save_strategy="no", use_cpu=True)
    assert trainer.state.global_step == 2
    logged = [entry for entry in trainer.state.log_history if "reward" in entry]
    assert len(logged) == 2
    assert all({"rewards/accuracy_reward/mean", "rewards/step_reward/mean"} <= set(entry) for entry in logged)

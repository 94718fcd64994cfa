"""RL sanity: GRPO through r1kit must learn a reward that is trivially learnable, and from a
trained SFT model it must not lower the training reward it optimises (beyond noise).

Both run on a tiny char-level model with fixed seeds and assert behaviour, never wall-clock."""

import random
import statistics

import pytest
from datasets import Dataset

from r1kit import rewards as reward_registry
from r1kit.models import build_char_tokenizer, build_tiny_model
from r1kit.train.common import read_metrics
from r1kit.train.grpo import train_grpo


def starts_with(char: str):
    def starts_with(completions, **kwargs):
        return [1.0 if reward_registry.text_of(c).startswith(char) else 0.0 for c in completions]

    return starts_with


def logged_rewards(path):
    return [row["reward"] for row in read_metrics(path) if "reward" in row]


def test_grpo_learns_a_trivially_learnable_reward(tmp_path, monkeypatch):
    """Fresh tiny model, reward 1 when the completion starts with '7' (about 1 in 132 at random)."""
    monkeypatch.setitem(reward_registry.REGISTRY, "starts_with", starts_with)
    tokenizer = build_char_tokenizer()
    model = build_tiny_model("tiny-1m", tokenizer, seed=0)
    dataset = Dataset.from_list([{"prompt": f"{a}+{b}\n"} for a in range(10) for b in range(10)])
    train = {"max_steps": 30, "learning_rate": 3e-3, "per_device_train_batch_size": 128, "num_generations": 16,
             "max_completion_length": 2, "logging_steps": 1, "save_steps": 1000}
    train_grpo(model, tokenizer, dataset, output_dir=tmp_path / "out", rewards={"starts_with": {"char": "7"}},
               train=train, seed=0, health=False)
    rewards = logged_rewards(tmp_path / "out" / "metrics.jsonl")
    first, last = statistics.mean(rewards[:3]), statistics.mean(rewards[-3:])
    assert len(rewards) == 30
    assert first < 0.1 and last > 0.5, f"mean reward of the first 3 logs {first:.3f}, of the last 3 {last:.3f}"


# ------------------------------------------------------------------ from a trained SFT model

def arithmetic_rows(seed: int, n: int):
    """One-digit sums and products as compact traces, with the columns r1kit's rewards read."""
    rng, rows = random.Random(seed), []
    for _ in range(n):
        a, b, op = rng.randrange(10), rng.randrange(10), rng.choice("+*")
        value = a + b if op == "+" else a * b
        rows.append({"prompt": f"{a}{op}{b}\n", "completion": f"{a}{op}{b}={value}|answer {value}",
                     "answer": str(value), "task": "arithmetic", "metadata": "{}",
                     "steps": [f"{a} {op} {b} = {value}"]})
    return rows


@pytest.fixture(scope="module")
def sft_model(tmp_path_factory):
    """A tiny model given a short SFT on one-digit arithmetic: right often, not always."""
    from r1kit.models import save_model
    from r1kit.train.sft import train_sft

    out = tmp_path_factory.mktemp("sft")
    tokenizer = build_char_tokenizer()
    model = build_tiny_model("tiny-1m", tokenizer, seed=0)
    rows = Dataset.from_list([{k: r[k] for k in ("prompt", "completion")} for r in arithmetic_rows(0, 4000)])
    train = {"max_steps": 150, "learning_rate": 3e-3, "per_device_train_batch_size": 64, "logging_steps": 50,
             "save_strategy": "no", "warmup_steps": 10}
    trainer = train_sft(model, tokenizer, rows, output_dir=out / "checkpoints", train=train, seed=0)
    return save_model(trainer.model, tokenizer, out / "model", prompt_info={"style": "compact", "chat": False})


def grpo_from_sft(sft_model, output_dir, **train):
    """GRPO on the same 16 prompts every step (16 x 8 samples), so that one step's reward differs
    from another's by sampling noise and by what training did, not by which prompts were drawn."""
    from r1kit.models import load_model

    model, tokenizer = load_model(sft_model)
    prompts = [{k: v for k, v in r.items() if k != "completion"} for r in arithmetic_rows(1, 16)]
    dataset = Dataset.from_list(prompts * 20)
    train = {"max_steps": 20, "per_device_train_batch_size": 128, "num_generations": 8, "max_completion_length": 24,
             "logging_steps": 1, "save_steps": 1000, "shuffle_dataset": False, **train}
    train_grpo(model, tokenizer, dataset, output_dir=output_dir, rewards={"accuracy": 1.0, "steps": 0.5},
               train=train, seed=0, health=False)
    rows = [row for row in read_metrics(output_dir / "metrics.jsonl") if "reward" in row]
    return [row["reward"] for row in rows], [row["rewards/accuracy_reward/mean"] for row in rows]


def fall(rewards):
    """Mean of the first 5 logged rewards less the mean of the last 5, and 2 standard errors of that."""
    first, last = rewards[:5], rewards[-5:]
    noise = 2 * (statistics.pvariance(first) / len(first) + statistics.pvariance(last) / len(last)) ** 0.5
    return statistics.mean(first) - statistics.mean(last), noise


def test_grpo_from_sft_does_not_lower_its_training_reward(sft_model, tmp_path):
    rewards, accuracy = grpo_from_sft(sft_model, tmp_path / "out")  # r1kit's GRPO defaults
    assert len(rewards) == 20
    assert 0.2 < statistics.mean(accuracy[:5]) < 0.9, "the SFT model should be right often, not always"
    drop, noise = fall(rewards)
    assert drop < max(noise, 0.03), f"training reward fell {drop:.3f} (first 5 logs vs last 5; 2 s.e. = {noise:.3f})"

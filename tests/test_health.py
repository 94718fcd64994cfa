"""RL health checks on synthetic GRPO log dicts: each symptom is found with its number, healthy
logs raise nothing, and the callback reports a symptom once (one line, one metrics record)."""

import json
import random
from types import SimpleNamespace

import pytest

from r1kit.train.health import HealthSettings, RLHealth, check, reward_slope


def healthy(step, reward=0.6, **extra):
    return {"step": step, "reward": reward, "rewards/accuracy_reward/mean": reward, "entropy": 0.05,
            "completions/clipped_ratio": 0.0, "frac_reward_zero_std": 0.3, **extra}


def kinds(history, **kwargs):
    return {f.kind: f for f in check(history, **kwargs)}


def test_healthy_logs_raise_nothing():
    rng = random.Random(0)
    history = [healthy(5 * i, reward=0.6 + rng.uniform(-0.05, 0.05)) for i in range(1, 25)]
    assert check(history) == []
    assert check([]) == [] and check([{"step": 3, "train_runtime": 1.0}]) == []


def test_truncated_completions_name_the_limit():
    found = kinds([healthy(5), healthy(10, **{"completions/clipped_ratio": 0.3})], max_completion_length=64)
    assert "truncated" not in found  # the mean of the last two logs (0.15) is judged, not one spike
    found = kinds([healthy(5, **{"completions/clipped_ratio": 0.5}), healthy(10, **{"completions/clipped_ratio": 0.7})],
                  max_completion_length=64)
    assert found["truncated"].value == pytest.approx(0.6)
    assert "max_completion_length (now 64)" in found["truncated"].advice and "60%" in found["truncated"].message


def test_zero_variance_groups_say_which_way_to_move_the_levels():
    easy = [healthy(5 * i, reward=0.95, frac_reward_zero_std=0.9) for i in range(1, 3)]
    hard = [healthy(5 * i, reward=0.05, frac_reward_zero_std=0.8) for i in range(1, 3)]
    assert kinds(easy)["zero_variance"].value == pytest.approx(0.9)
    assert "harder levels" in kinds(easy)["zero_variance"].advice
    assert "easier levels" in kinds(hard, num_generations=8)["zero_variance"].advice
    assert "(now 8)" in kinds(hard, num_generations=8)["zero_variance"].advice
    assert "zero_variance" not in kinds([healthy(5, frac_reward_zero_std=0.5)])


def test_entropy_collapse_absolute_and_relative():
    assert kinds([healthy(5, entropy=0.005)])["entropy_collapse"].value == pytest.approx(0.005)
    falling = [healthy(5, entropy=0.5), healthy(10, entropy=0.2), healthy(15, entropy=0.08)]
    assert "entropy_collapse" in kinds(falling)
    assert "entropy_collapse" not in kinds(falling[:2])  # 0.2 is 40% of the first: not yet


def test_reward_falling_needs_a_significant_negative_slope():
    rng = random.Random(1)
    # The run: 0.63 -> 0.32 over 120 steps, logged every 5, with noise.
    falling = [healthy(5 * i, reward=0.63 - 0.31 * i / 24 + rng.uniform(-0.02, 0.02)) for i in range(1, 25)]
    found = kinds(falling, learning_rate=3e-4, beta=0.0)
    assert found["reward_falling"].value == pytest.approx(-0.26, abs=0.08)  # per 100 steps
    assert "learning_rate (now 0.0003)" in found["reward_falling"].advice
    assert "set beta > 0" in found["reward_falling"].advice
    # Noise as large as the fall over the window is not significant; a rise is never reported.
    noisy = [healthy(5 * i, reward=0.6 + (0.15 if i % 2 else -0.15) - 0.002 * i) for i in range(1, 25)]
    rising = [healthy(5 * i, reward=0.3 + 0.01 * i) for i in range(1, 25)]
    assert "reward_falling" not in kinds(noisy) and "reward_falling" not in kinds(rising)
    # A window too short to fit says nothing.
    assert "reward_falling" not in kinds(falling[:5], settings=HealthSettings(window=6))


def test_reward_slope_is_least_squares():
    slope, se = reward_slope([0, 1, 2, 3], [1.0, 3.0, 5.0, 7.0])
    assert slope == pytest.approx(2.0) and se == pytest.approx(0.0)
    assert reward_slope([1, 2], [0.0, 1.0])[1] == float("inf")


def test_callback_reports_each_symptom_once_even_when_it_comes_back(tmp_path):
    path, lines = tmp_path / "metrics.jsonl", []
    callback = RLHealth(path, say=lines.append)
    args = SimpleNamespace(max_completion_length=64, learning_rate=1e-4, beta=0.0, num_generations=8)
    clipped = {"completions/clipped_ratio": 0.9}
    sequence = [healthy(1, **clipped), healthy(2, **clipped), healthy(3, **clipped), healthy(4), healthy(5),
                healthy(6, **clipped), healthy(7, **clipped)]
    for row in sequence:
        state = SimpleNamespace(is_world_process_zero=True, global_step=row.pop("step"))
        callback.on_log(args, state, None, logs=row)
    callback.on_log(args, SimpleNamespace(is_world_process_zero=True, global_step=7), None, logs={"train_runtime": 3.0})
    assert len(lines) == 1 and lines[0].startswith("GRPO health, step 1:") and "\n" not in lines[0]
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["step"], r["health"]) for r in records] == [(1, "truncated")]
    assert records[0]["value"] == pytest.approx(0.9) and "max_completion_length (now 64)" in records[0]["advice"]

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


import subprocess  # noqa: E402
import sys  # noqa: E402

import pytest  # noqa: E402


def run_cli(*args, env=None, cwd=None, timeout=900):
    """`r1kit ARGS` in a fresh process (as a user runs it), with extra environment variables."""
    return subprocess.run([sys.executable, "-c", "from r1kit.cli import run; run()", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd, env={**os.environ, **(env or {})})


@pytest.fixture(scope="session")
def cli():
    return run_cli


def half_right(completions, **kwargs):
    """A stand-in accuracy with variance even for a fresh model: right when the completion's first
    character has an even code."""
    from r1kit.rewards import text_of

    return [1.0 if (t := text_of(c)) and ord(t[0]) % 2 == 0 else 0.0 for c in completions]


@pytest.fixture
def half_right_accuracy(monkeypatch):
    """The `accuracy` reward replaced by `half_right` for one test."""
    from r1kit import rewards

    monkeypatch.setitem(rewards.REGISTRY, "accuracy", lambda: half_right)

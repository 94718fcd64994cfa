"""A damaged newest checkpoint is found before training resumes from it: the one before is used."""

from __future__ import annotations

import json

import pytest

from r1kit.models import build_char_tokenizer, build_tiny_model
from r1kit.train.common import checkpoint_problem, last_checkpoint


@pytest.fixture()
def checkpoints(tmp_path):
    """Two real checkpoints written the way the Trainer writes them (weights, optimizer, state)."""
    import torch

    tokenizer = build_char_tokenizer()
    model = build_tiny_model("tiny-1m", tokenizer, seed=0)
    optimizer = torch.optim.AdamW(model.parameters())
    ids = torch.tensor([tokenizer("12+3\n")["input_ids"]])
    model(input_ids=ids, labels=ids).loss.backward()
    optimizer.step()  # Adam's moments: the optimizer file holds real tensors
    for step in (5, 10):
        folder = tmp_path / f"checkpoint-{step}"
        model.save_pretrained(folder)
        torch.save(optimizer.state_dict(), folder / "optimizer.pt")
        torch.save({"python": 1}, folder / "rng_state.pth")
        (folder / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    return tmp_path


def _truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def test_sound_checkpoints_pass(checkpoints):
    assert checkpoint_problem(checkpoints / "checkpoint-10") is None
    assert last_checkpoint(checkpoints, say=pytest.fail) == str(checkpoints / "checkpoint-10")


@pytest.mark.parametrize("damage, reason", [
    (lambda c: _truncate(c / "model.safetensors"), "model.safetensors"),
    (lambda c: _truncate(c / "optimizer.pt"), "optimizer.pt"),
    (lambda c: (c / "trainer_state.json").write_text('{"global_st'), "trainer_state.json"),
    (lambda c: (c / "model.safetensors").unlink(), "no model weights"),
])
def test_a_damaged_newest_checkpoint_falls_back_to_the_one_before(checkpoints, damage, reason):
    damage(checkpoints / "checkpoint-10")
    said = []
    assert last_checkpoint(checkpoints, say=said.append) == str(checkpoints / "checkpoint-5")
    assert len(said) == 1 and "checkpoint-10 is damaged" in said[0] and reason in said[0]
    assert "resuming from the one before" in said[0]
    assert (checkpoints / ".damaged" / "checkpoint-10").is_dir() and not (checkpoints / "checkpoint-10").exists()


def test_corrupted_bytes_inside_the_optimizer_are_found(checkpoints):
    path = checkpoints / "checkpoint-10" / "optimizer.pt"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # a flipped byte: the zip's CRC no longer matches
    path.write_bytes(bytes(data))
    assert "optimizer.pt" in checkpoint_problem(checkpoints / "checkpoint-10")


def test_no_sound_checkpoint_starts_over_in_one_line(checkpoints):
    for step in (5, 10):
        _truncate(checkpoints / f"checkpoint-{step}" / "model.safetensors")
    said = []
    assert last_checkpoint(checkpoints, say=said.append) is None
    assert len(said) == 2 and "the stage starts over from step 0" in said[-1]

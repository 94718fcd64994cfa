"""Step credit: a wrong completion is blamed only from its first wrong step."""

import pytest
import torch

from r1kit import recipe
from r1kit.errors import R1kitError
from r1kit.models import build_char_tokenizer
from r1kit.train.step_credit import first_token_at, step_credit_advantages
from r1kit.verify import first_wrong_step

REFERENCE = ["9 + 5 = 14", "14 * 16 = 224", "224 + 5 = 229"]  # (9 + 5) * 16 + 5


@pytest.mark.parametrize("text, where", [
    ("9+5=14;14*16=224;224+5=229|answer 229", None),          # every step true and in the reference
    ("9+5=14;14*16=224;224+5=229|answer 230", None),          # a wrong answer after true steps: no step to blame
    ("9+5=14;14*16=236;236+5=241|answer 241", 7),             # a false product
    ("9+5=14;16*14=224;5+224=229|answer 229", None),          # + and * in either order
    ("9+6=15;15*16=240;240+5=245|answer 245", 0),             # a misread operand: true, but off the reference
    ("<think>9 + 5 = 14, then 14 * 16 = 234</think>", 24),   # think style, with spaces
])
def test_first_wrong_step(text, where):
    assert first_wrong_step(text, REFERENCE) == where


def test_without_a_reference_only_false_steps_are_wrong():
    assert first_wrong_step("9+6=15;15*16=240|answer 240", []) is None
    assert first_wrong_step("9+6=15;15*16=250|answer 250", []) == 7


class Pieces:
    """A tokenizer whose tokens are several characters long, as BPE's are."""

    pieces = ("9+5=", "14;", "14*", "16=", "236", ";", "|answer ", "241")

    def decode(self, ids, skip_special_tokens=True):
        return "".join(self.pieces[i] for i in ids)


def test_first_token_at_maps_a_character_to_the_token_holding_it():
    ids = list(range(len(Pieces.pieces)))
    text = Pieces().decode(ids)
    assert [first_token_at(Pieces(), ids, text.index(s)) for s in ("9", "14;", "4;", "236", "241")] == [0, 1, 1, 4, 7]
    assert first_token_at(Pieces(), ids, len(text)) == len(ids)  # past the end: no token


def padded(tokenizer, texts, width):
    ids = torch.zeros(len(texts), width, dtype=torch.long)
    mask = torch.zeros(len(texts), width, dtype=torch.long)
    for i, text in enumerate(texts):
        encoded = tokenizer(text, add_special_tokens=False)["input_ids"]
        ids[i, :len(encoded)], mask[i, :len(encoded)] = torch.tensor(encoded), 1
    return ids, mask


def test_advantages_before_the_first_wrong_step_are_zero_and_the_rest_unchanged():
    tokenizer = build_char_tokenizer()
    texts = ["9+5=14;14*16=236;236+5=241|answer 241",   # wrong at character 7
             "9+5=14;14*16=224;224+5=229|answer 229",   # right
             "9+5=14;14*16=224;224+5=229|answer 230",   # wrong, but no wrong step
             "9+5=14;14*16=236;236+5=241|answer 241"]   # the same wrong text, with a positive advantage
    ids, mask = padded(tokenizer, texts, 48)
    advantages = torch.tensor([-1.0, 2.0, -0.5, 0.25])
    per_token, narrowed = step_credit_advantages(advantages, ids, mask, [REFERENCE] * 4, tokenizer)
    assert per_token.shape == (4, 48) and narrowed == 1
    assert torch.all(per_token[0, :7] == 0) and torch.all(per_token[0, 7:] == -1.0)
    assert torch.all(per_token[1] == 2.0) and torch.all(per_token[2] == -0.5) and torch.all(per_token[3] == 0.25)


def test_the_recipe_takes_step_credit_and_keeps_old_stage_hashes():
    from r1kit.pipeline import stage_hash

    def grpo(**extra):
        return recipe.validate({"name": "r", "task": "arithmetic", "model": {"preset": "tiny-1m"},
                                "stages": [{"name": "g", "kind": "grpo", **extra}]})

    plain, credited = grpo(), grpo(step_credit=True)
    assert credited.stages[0].step_credit and not plain.stages[0].step_credit
    assert "step_credit" not in plain.stages[0].model_dump(by_alias=True, mode="json")
    assert stage_hash(plain, plain.stages[0]) != stage_hash(credited, credited.stages[0])
    with pytest.raises(R1kitError, match="step_credit"):
        grpo(step_credit="often")


def test_a_short_grpo_run_with_step_credit(tmp_path, half_right_accuracy):
    from r1kit.data import build
    from r1kit.models import build_tiny_model
    from r1kit.train.common import read_metrics
    from r1kit.train.grpo import train_grpo

    tokenizer = build_char_tokenizer()
    model = build_tiny_model("tiny-1m", tokenizer, seed=0)
    before = [p.detach().clone() for p in model.parameters()]
    dataset = build("arithmetic", levels=[1, 2], count=20, seed=0, style="compact")["train"].remove_columns("completion")
    train = {"per_device_train_batch_size": 16, "num_generations": 4, "max_completion_length": 24,
             "logging_steps": 1, "max_steps": 2, "learning_rate": 1e-3}
    train_grpo(model, tokenizer, dataset, output_dir=tmp_path / "out", rewards={"accuracy": 1.0, "steps": 0.5},
               train=train, seed=0, health=False, step_credit=True)
    rows = [r for r in read_metrics(tmp_path / "out" / "metrics.jsonl") if "loss" in r]
    assert len(rows) == 2 and all(0.0 <= r["step_credit/narrowed"] <= 1.0 for r in rows)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    with pytest.raises(R1kitError, match="no `steps` column"):
        train_grpo(model, tokenizer, dataset.remove_columns("steps"), output_dir=tmp_path / "bad",
                   rewards={"accuracy": 1.0}, train=train, step_credit=True)

"""How models are asked: the `short` style, a base asked as its recipe asks, per-stage LoRA, level 0."""

import json

import pytest

from r1kit import recipe as recipes
from r1kit import tasks
from r1kit.data import generate
from r1kit.prompting import PromptFormat, prompt_format, write_prompt_info
from r1kit.render import render
from r1kit.stages.common import stage_lora

TASK = tasks.get("arithmetic")


class ChatTokenizer:
    chat_template = "{{ messages }}"

    def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=True):
        return "".join(f"<|{m['role']}|>{m['content']}" for m in messages) + "<|assistant|>"


def test_the_short_style_asks_for_the_answer_alone():
    problem = TASK.compile("3 + 5")
    assert render(problem, "short", TASK) == ("Compute 3 + 5.\nGive only the final answer.", "8")
    fmt = PromptFormat("short", chat=True)
    assert fmt.prompt(problem, ChatTokenizer(), TASK) == ("<|user|>Compute 3 + 5.\nGive only the final answer."
                                                           "<|assistant|>")


def test_a_base_is_asked_as_the_recipe_asks_and_a_trained_model_as_it_was_trained(tmp_path):
    recipe_way = PromptFormat("short", chat=False)
    assert prompt_format(None, ChatTokenizer()) == PromptFormat("think", chat=True)  # no recipe: the default
    assert prompt_format(None, ChatTokenizer(), untrained=recipe_way) == recipe_way
    trained = tmp_path / "model"
    trained.mkdir()
    write_prompt_info(trained, {"style": "compact", "chat": True})
    assert prompt_format(trained, ChatTokenizer(), untrained=recipe_way) == PromptFormat("compact", chat=True)


def test_level_zero_is_a_warm_up_below_level_one():
    task = TASK.with_levels({0: {"like": 1, "max_value": 9}})
    assert task.levels[0] == 0 and 0 not in TASK.levels  # the registry's task is untouched
    problems = generate(task, [0], 100, seed=0)  # of the 162 there are
    operands = [int(n) for p in problems for n in p.question.replace("-", " ").replace("+", " ").split()]
    assert {p.level for p in problems} == {0} and max(operands) <= 9 and min(operands) >= 1
    with pytest.raises(Exception, match="from 0 up"):
        TASK.with_levels({-1: {"like": 1}})


def _recipe(model_lora, stage_lora_value):
    sft = {"name": "sft", "kind": "sft", "from": "base"}
    if stage_lora_value is not None:
        sft["lora"] = stage_lora_value
    model = {"preset": "tiny-1m", **({"lora": model_lora} if model_lora else {})}
    return recipes.validate({"name": "x", "model": model, "stages": [{"name": "base", "kind": "pretrain"}, sft]})


class _Run:
    def __init__(self, recipe):
        self.recipe = recipe


@pytest.mark.parametrize("model_lora, stage_value, expected", [
    (None, None, None),
    ({"r": 4}, None, {"r": 4}),  # the recipe's, where the stage says nothing
    ({"r": 4}, False, None),  # this stage in full
    (None, {"r": 8, "alpha": 16}, {"r": 8, "alpha": 16}),  # this stage only
    ({"r": 4}, {"r": 8}, {"r": 8}),  # the stage's in place of the recipe's
])
def test_a_stage_lora_replaces_the_recipes(model_lora, stage_value, expected):
    recipe = _recipe(model_lora, stage_value)
    assert stage_lora(_Run(recipe), recipe.stages[1]) == expected


def test_a_stage_without_lora_keeps_its_hash():
    dumped = _recipe(None, None).stages[1].model_dump(by_alias=True)
    assert "lora" not in dumped
    assert _recipe(None, {"r": 8}).stages[1].model_dump(by_alias=True)["lora"] == {"r": 8}


def test_a_lora_stage_trains_adapters_and_saves_a_plain_model(tmp_path):
    import subprocess
    import sys

    recipe = tmp_path / "lora.yaml"
    recipe.write_text(json.dumps({
        "name": "lora", "seed": 0, "model": {"preset": "tiny-1m"},
        "stages": [{"name": "base", "kind": "pretrain", "data": {"count": 64}, "train": {"max_steps": 2}},
                   {"name": "full", "kind": "sft", "from": "base", "data": {"count": 32}, "train": {"max_steps": 2}},
                   {"name": "adapted", "kind": "sft", "from": "base", "lora": {"r": 4, "alpha": 8, "dropout": 0.0},
                    "data": {"count": 32}, "train": {"max_steps": 2, "learning_rate": 0.01}}]}))
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", "r1kit", "run", str(recipe), "--out", str(out)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    from safetensors.torch import load_file

    base, full, adapted = (load_file(out / "stages" / name / "model" / "model.safetensors")
                           for name in ("base", "full", "adapted"))
    assert set(adapted) == set(base) and not any("lora_" in key for key in adapted)  # merged: plain weights
    changed = lambda model: {k for k in base if not (model[k] == base[k]).all()}  # noqa: E731
    # LoRA moves only the adapted linear layers; full fine-tuning also moves embeddings and norms
    assert changed(adapted) and all(k.endswith("proj.weight") or "lm_head" in k or "fc" in k for k in changed(adapted))
    assert changed(full) - changed(adapted)

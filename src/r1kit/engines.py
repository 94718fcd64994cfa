"""Loading a model for inference and generating text, one call each: `load_for_inference(path, engine)`
and `generate_texts(model, tokenizer, prompts, ...)`, on transformers (`hf`, runs everywhere) or
vLLM (`vllm`, fast on GPUs). Evaluation, lm-eval, local teachers and the server all go through them.

`auto` picks vLLM when it is installed and a GPU is present, transformers otherwise. Both see the
same prompts (token ids from r1kit's own tokenizer, so char-level models work in vLLM too) and
return the same texts (special tokens dropped, cut at a stop string), so scores are comparable.

GRPO's rollouts use TRL's own vLLM integration (`use_vllm`, `vllm_mode` in a stage's `train:`);
`require_vllm` makes a missing install one clear error before any work starts.
"""

from __future__ import annotations

import math
from importlib.util import find_spec
from pathlib import Path
from dataclasses import dataclass
from typing import Any

from r1kit.errors import R1kitError

ENGINES = ("auto", "hf", "vllm")


def vllm_available() -> bool:
    return find_spec("vllm") is not None


def vllm_missing(what: str) -> str:
    return (f"{what} needs vLLM, which is not installed: pip install 'r1kit[vllm]' (on a CUDA machine); "
            "for GRPO with vllm_mode: server also start `trl vllm-serve --model MODEL` on GPUs of its own")


def require_vllm(what: str) -> None:
    if not vllm_available():
        raise R1kitError(vllm_missing(what))


def choose_engine(requested: str = "auto", *, cuda: bool | None = None) -> str:
    """`hf` or `vllm`: what `requested` means on this machine."""
    if requested not in ENGINES:
        raise R1kitError(f"unknown engine {requested!r}; engines: {', '.join(ENGINES)}")
    if requested == "vllm":
        require_vllm("engine: vllm")
    if requested != "auto":
        return requested
    if cuda is None:
        import torch

        cuda = torch.cuda.is_available()
    return "vllm" if cuda and vllm_available() else "hf"


@dataclass
class GenerationSettings:
    max_new_tokens: int = 96
    batch_size: int = 128
    temperature: float = 1.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()  # stop strings: a sequence ends once its text holds one
    keep_stop: bool = True  # the text ends after the stop string (as transformers' stop_strings), else before (OpenAI)


def generate_texts(model, tokenizer, prompts: list[str], *, samples: int = 1, greedy: bool = True,
                   settings: GenerationSettings | None = None, progress: Any = None, streamer: Any = None,
                   lengths: list[tuple[int, bool]] | None = None) -> list[list[str]]:
    """`samples` completions per prompt (text after the prompt, special tokens dropped, cut at the
    first stop string). Greedy completions are all the same: generated once, then repeated.

    `streamer` (a transformers streamer; one prompt, one sample) receives tokens as they come.
    `lengths`, when given, receives (tokens generated, ended by EOS or a stop string) per completion, in order.
    """
    settings = settings or GenerationSettings()
    draws = 1 if greedy else samples  # transformers refuses num_return_sequences > 1 without sampling
    found: list[tuple[int, bool]] = []
    if hasattr(model, "generate_texts"):  # another engine: `VLLMModel`, or any object with this method
        texts = model.generate_texts(tokenizer, prompts, samples=draws, greedy=greedy, settings=settings,
                                     progress=progress)
    else:
        texts = _hf_generate(model, tokenizer, prompts, draws, greedy, settings, progress, streamer, found)
    repeat, sizes, outputs = samples // draws, iter(found), []
    for row in texts:
        ends = [stop_at(text, settings.stop, keep=settings.keep_stop) for text in row]
        outputs.append([text[:end] for text, end in zip(row, ends)] * repeat)
        if lengths is not None:  # `ends` first: zip stops on it without taking one more from `sizes`
            lengths.extend([(n, eos or end is not None) for end, (n, eos) in zip(ends, sizes)] * repeat)
    return outputs


def stop_at(text: str, stop: tuple[str, ...] | list[str], *, keep: bool) -> int | None:
    """Where `text` ends at its first stop string: after it (`keep`) or before it; None without one."""
    ends = [i + len(s) if keep else i for s in stop if (i := text.find(s)) >= 0]
    return min(ends) if ends else None


def _hf_generate(model, tokenizer, prompts, samples, greedy, settings, progress, streamer, lengths):
    import torch

    tokenizer.padding_side = "left"  # decoder-only batched generation
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    outputs: list[list[str]] = []
    per_batch = max(1, settings.batch_size // samples)
    try:
        for start in range(0, len(prompts), per_batch):
            batch = prompts[start:start + per_batch]
            encoded = tokenizer(batch, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
            kwargs: dict[str, Any] = dict(max_new_tokens=settings.max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                                          eos_token_id=tokenizer.eos_token_id, num_return_sequences=samples)
            if greedy:
                kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
            else:
                kwargs.update(do_sample=True, temperature=settings.temperature, top_p=settings.top_p, top_k=0)
            if settings.stop:
                kwargs.update(stop_strings=list(settings.stop), tokenizer=tokenizer)
            with torch.inference_mode():
                generated = model.generate(**encoded, **kwargs, streamer=streamer)
            new_tokens = generated[:, encoded["input_ids"].shape[1]:]
            texts = tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
            outputs.extend(texts[i * samples:(i + 1) * samples] for i in range(len(batch)))
            lengths.extend(_generated_length(row, tokenizer) for row in new_tokens.tolist())
            if progress is not None:
                progress(len(batch))
    finally:
        model.train(was_training)
    return outputs


def _generated_length(row: list[int], tokenizer) -> tuple[int, bool]:
    # generate() pads a sequence that finished early (EOS or a stop string) up to the batch's length
    if tokenizer.eos_token_id in row:
        return row.index(tokenizer.eos_token_id) + 1, True
    while row and row[-1] == tokenizer.pad_token_id:
        row.pop()
    return len(row), False


def sampling_kwargs(settings, *, samples: int, greedy: bool, seed: int, eos_token_id: int) -> dict[str, Any]:
    """`vllm.SamplingParams` arguments that match `generate_texts` with transformers:
    greedy is temperature 0; sampling uses the settings' temperature and top_p and no top-k."""
    kwargs: dict[str, Any] = {"n": samples, "max_tokens": settings.max_new_tokens, "seed": seed,
                              "stop_token_ids": [eos_token_id], "detokenize": False}
    if greedy:
        kwargs.update(temperature=0.0, top_p=1.0)
    else:
        kwargs.update(temperature=settings.temperature, top_p=settings.top_p)
    return kwargs


class VLLMModel:
    """A model directory loaded into vLLM in this process. `generate_texts` hands it its prompts
    instead of calling transformers."""

    def __init__(self, path: str | Path, *, dtype: str | None = None, seed: int = 0,
                 gpu_memory_utilization: float = 0.5):
        require_vllm("engine: vllm")
        import gc

        import torch
        from vllm import LLM

        gc.collect()  # training that ran earlier in this process may still hold GPU memory
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        self.path, self.seed = str(path), seed
        # r1kit tokenizes and detokenizes itself: vLLM never loads a tokenizer that might read
        # the char tokenizer's files differently.
        self.llm = LLM(model=self.path, skip_tokenizer_init=True, dtype=dtype or "auto", seed=seed,
                       gpu_memory_utilization=gpu_memory_utilization)

    def generate_texts(self, tokenizer, prompts: list[str], *, samples: int, greedy: bool, settings,
                       progress: Any = None) -> list[list[str]]:
        from vllm import SamplingParams

        params = SamplingParams(**sampling_kwargs(settings, samples=samples, greedy=greedy, seed=self.seed,
                                                  eos_token_id=tokenizer.eos_token_id))
        requests = [{"prompt_token_ids": tokenizer(p, add_special_tokens=False)["input_ids"]} for p in prompts]
        outputs = self.llm.generate(requests, params, use_tqdm=False)
        texts = [[tokenizer.decode(c.token_ids, skip_special_tokens=True) for c in out.outputs] for out in outputs]
        if progress is not None:
            progress(len(prompts))
        return texts

    def parameter_count(self) -> int:
        return count_saved_parameters(self.path)


def count_saved_parameters(path: str | Path) -> int:
    """Parameters in a model directory's safetensors files, read from their headers only."""
    from safetensors import safe_open

    total = 0
    for file in Path(path).glob("*.safetensors"):
        with safe_open(str(file), framework="pt") as f:
            for key in f.keys():
                shape = f.get_slice(key).get_shape()
                total += math.prod(shape)
    return total


def load_for_inference(path: str, engine: str = "hf", *, device=None, dtype=None, seed: int = 0):
    """(model, tokenizer) ready to generate or score: a `VLLMModel`, or a transformers model on
    `device` (default: this process's) in `dtype` (default: bf16 on a CPU where it pays, else as saved)."""
    import torch

    from r1kit.distributed import device as process_device
    from r1kit.models import count_parameters, load_model, load_tokenizer, resolve_model_path
    from r1kit.precision import cpu_bf16_pays

    if engine == "vllm":
        path = resolve_model_path(path)  # a .gguf becomes its converted directory
        return VLLMModel(path, dtype=dtype, seed=seed), load_tokenizer(path)
    model, tokenizer = load_model(path, dtype=dtype, device=device or process_device())
    # bf16 weights, not autocast: generation only reads them (training keeps fp32 weights and autocasts)
    if dtype is None and model.device.type == "cpu" and model.dtype == torch.float32 \
            and cpu_bf16_pays(count_parameters(model)):
        model = model.to(torch.bfloat16)
    return model, tokenizer


def parameter_count(model) -> int:
    if isinstance(model, VLLMModel):
        return model.parameter_count()
    from r1kit.models import count_parameters

    return count_parameters(model)

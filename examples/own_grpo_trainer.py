"""r1kit's rewards inside your own TRL `GRPOTrainer`: r1kit makes the problems (each row with its
answer, task and reference steps, the columns its rewards read) and judges the completions; TRL
trains. Nothing else of r1kit is involved: your trainer, your config, your callbacks.

    python examples/own_grpo_trainer.py Qwen/Qwen2.5-0.5B-Instruct --max-steps 100
"""

from __future__ import annotations

import argparse

from trl import GRPOConfig, GRPOTrainer

from r1kit import data, rewards


def train(model, *, output_dir: str, task: str = "arithmetic", levels=(1, 2, 3), count: int = 2000,
          style: str = "think", chat: bool = True, processing_class=None, seed: int = 0, **config) -> GRPOTrainer:
    """GRPO on `model` (a hub id, a path or a model object) with r1kit's verifier rewards;
    `config`: any GRPOConfig field."""
    problems = data.build(task, list(levels), count, style=style, conversational=chat, seed=seed)["train"]
    problems = problems.remove_columns("completion")  # the reference trace: GRPO samples its own
    reward_funcs, weights = rewards.build({"accuracy": 1.0, "format": 0.2, "steps": 0.5} if style == "think"
                                          else {"accuracy": 1.0, "steps": 0.5})  # `format` scores <think> tags
    args = GRPOConfig(output_dir=output_dir, reward_weights=weights, seed=seed, report_to=[], **config)
    trainer = GRPOTrainer(model=model, reward_funcs=reward_funcs, args=args, train_dataset=problems,
                          processing_class=processing_class)
    trainer.train()
    return trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a hub id or a local model directory")
    parser.add_argument("--output-dir", default="grpo-own")
    parser.add_argument("--max-steps", type=int, default=100)
    parser.add_argument("--num-generations", type=int, default=8)
    args = parser.parse_args()
    trainer = train(args.model, output_dir=args.output_dir, max_steps=args.max_steps,
                    num_generations=args.num_generations, max_completion_length=256)
    trainer.save_model(args.output_dir)


if __name__ == "__main__":
    main()

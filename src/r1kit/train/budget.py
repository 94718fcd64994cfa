"""Equal compute for ablations: a FLOPs budget becomes a step count (SFT, where every step costs
about the same) or a stop signal (trainers that generate, where a step costs what the model wrote).

FLOPs are the ledger's estimates for the student: 6·N per trained token, 2·N per generated token, so
a token that is generated and then trained on (GRPO, on-policy distillation) costs 8·N.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from transformers import TrainerCallback

from r1kit.ledger import FORWARD_FLOPS_PER_TOKEN, TRAIN_FLOPS_PER_TOKEN

GENERATE_AND_TRAIN_FLOPS_PER_TOKEN = TRAIN_FLOPS_PER_TOKEN + FORWARD_FLOPS_PER_TOKEN


def row_lengths(dataset, tokenizer) -> list[int]:
    """Tokens per prompt+completion row, as the trainer will see them."""
    lengths = []
    for row in dataset:
        prompt, completion = row["prompt"], row.get("completion", "")
        if isinstance(prompt, list):  # conversational
            ids = tokenizer.apply_chat_template(prompt + (completion or []), tokenize=True)
            # transformers 5 returns a BatchEncoding, a Mapping but not a dict: its length is its key count
            lengths.append(len(ids["input_ids"] if isinstance(ids, Mapping) else ids))
        else:
            lengths.append(len(tokenizer(prompt + completion, add_special_tokens=False)["input_ids"]) + 1)  # + EOS
    return lengths


def rows_per_step(config) -> int:
    """Rows an optimizer step of a built TRL config trains on, over every process."""
    from accelerate import PartialState

    return config.per_device_train_batch_size * config.gradient_accumulation_steps * PartialState().num_processes


def sft_steps(budget: float, parameters: int, lengths: list[int], rows: int) -> int:
    """Steps of `rows` rows that spend `budget` FLOPs on a dataset with these row lengths (an
    epoch's last batch may be short, which matters when a small dataset is seen many times)."""
    per_step = sum(lengths) / math.ceil(len(lengths) / rows)
    return max(1, int(budget // (TRAIN_FLOPS_PER_TOKEN * parameters * per_step)))


def step_ceiling(budget: float, parameters: int, min_tokens: float, rows: int) -> int:
    """An upper bound on steps for generating trainers (every sequence has at least its prompt and
    one token), so the progress bar and the schedule have an end; `FlopsBudget` stops earlier."""
    return max(1, int(budget // (GENERATE_AND_TRAIN_FLOPS_PER_TOKEN * parameters * min_tokens * rows)) + 1)


class FlopsBudget(TrainerCallback):
    """Stops training once the tokens the trainer processed (TRL's `num_input_tokens_seen`, summed
    over processes and restored on resume) have cost `budget` FLOPs."""

    def __init__(self, budget: float, parameters: int, flops_per_token: int = GENERATE_AND_TRAIN_FLOPS_PER_TOKEN):
        self.budget = budget
        self.cost_per_token = flops_per_token * parameters

    def spent(self, state) -> float:
        return state.num_input_tokens_seen * self.cost_per_token

    def on_step_end(self, args, state, control, **kwargs):
        if self.spent(state) >= self.budget:
            control.should_training_stop = True
            control.should_save = True
        return control

"""Step credit for GRPO: blame a wrong completion only from the step where it went wrong.

GRPO gives every token of a completion its group-relative advantage. A wrong completion of an
arithmetic problem is usually right up to one false step (`14*16=236`) and then consistently
wrong; pushing down its whole text pushes down the correct steps it shares with the right
completions of its group. The step checker knows where it first went wrong, so with
`step_credit: true` on a grpo stage a completion with a negative advantage keeps that advantage
only from the start of its first false (or off-reference) step on; the tokens before it get 0.
Completions with a positive advantage, and wrong ones with no such step (a wrong or missing final
answer after true steps), keep TRL's advantage on every token. TRL's loss takes per-token
advantages of shape (B, T) from a subclass (`GRPOTrainer._compute_loss`).

This is a narrower form of DeepSeekMath's process supervision (Shao et al. 2024, section 4.1.3),
with the rule-based step checker as the process reward instead of a learned one.
"""

from __future__ import annotations

from typing import Any

import torch

from r1kit.verify import first_wrong_step


def first_token_at(tokenizer: Any, ids: list[int], char: int) -> int:
    """The index of the token holding character `char` of `decode(ids)`: the smallest k whose
    decoded prefix `ids[:k + 1]` is longer than `char` (binary search, O(log T) decodes)."""
    low, high = 0, len(ids)
    while low < high:
        middle = (low + high) // 2
        if len(tokenizer.decode(ids[:middle + 1], skip_special_tokens=True)) > char:
            high = middle
        else:
            low = middle + 1
    return low


def step_credit_advantages(advantages: torch.Tensor, completion_ids: torch.Tensor, completion_mask: torch.Tensor,
                           references: list[list[str]], tokenizer: Any) -> tuple[torch.Tensor, int]:
    """Per-token advantages (B, T) from TRL's per-completion ones (B,), and how many completions
    were blamed only from their first wrong step."""
    per_token = advantages.unsqueeze(1).expand(-1, completion_ids.shape[1]).clone()
    narrowed = 0
    for i in torch.nonzero(advantages < 0).flatten().tolist():
        ids = completion_ids[i][completion_mask[i].bool()].tolist()
        start = first_wrong_step(tokenizer.decode(ids, skip_special_tokens=True), references[i])
        if start is not None:
            per_token[i, :first_token_at(tokenizer, ids, start)] = 0.0
            narrowed += 1
    return per_token, narrowed


class StepCredit:
    """A mixin over `GRPOTrainer` (or a subclass of it): the rows' `steps` column is the reference."""

    def _generate_and_score_completions(self, inputs: list[dict]) -> dict:
        output = super()._generate_and_score_completions(inputs)
        if not self.model.training:  # evaluation keeps TRL's advantages
            return output
        references = [row["steps"] for row in inputs]
        per_token, narrowed = step_credit_advantages(output["advantages"], output["completion_ids"],
                                                     output["completion_mask"], references, self.processing_class)
        output["advantages"] = per_token.to(output["advantages"].device)
        self._metrics["train"]["step_credit/narrowed"].append(narrowed / max(1, len(inputs)))
        return output

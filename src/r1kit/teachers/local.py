"""A local Hugging Face model as a teacher: batched, seeded sampling on this machine."""

from __future__ import annotations

from collections.abc import Callable

from r1kit.engines import GenerationSettings, generate_texts, load_for_inference
from r1kit.prompting import prompt_format


class LocalTeacher:
    """`LocalTeacher("runs/x/model")` or a hub id. Its trace style and chat-ness come from the
    model's r1kit.json, else "think" through the tokenizer's chat template; `style` overrides."""

    def __init__(self, path_or_hub_id: str, *, dtype=None, batch_size: int = 64, style: str | None = None,
                 device=None):
        self.model, self.tokenizer = load_for_inference(path_or_hub_id, device=device, dtype=dtype)
        self.format = prompt_format(path_or_hub_id, self.tokenizer, style=style)
        self.style = self.format.style
        self.batch_size = batch_size
        self.name = f"local:{path_or_hub_id}"

    def generate(self, prompts: list[str], *, n: int = 1, max_tokens: int = 256, temperature: float = 1.0,
                 seed: int = 0, progress: Callable[[int], None] | None = None) -> list[list[str]]:
        import torch

        texts = [self.format.wrap(prompt, self.tokenizer) for prompt in prompts]
        settings = GenerationSettings(max_new_tokens=max_tokens, batch_size=self.batch_size, temperature=temperature or 1.0)
        torch.manual_seed(seed)  # same prompts + seed => same samples, so a resumed run repeats itself
        return generate_texts(self.model, self.tokenizer, texts, samples=n, greedy=temperature == 0, settings=settings,
                              progress=progress)

    def count_tokens(self, text: str) -> int:
        """Tokens in a completion; collection uses it to tell a truncated (overlong) sample."""
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

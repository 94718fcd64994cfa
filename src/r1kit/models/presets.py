"""Tiny model presets (plain data: architecture + config kwargs) and freshly initialised models built from them."""

from __future__ import annotations

from typing import Any

import torch
from transformers import AutoModelForCausalLM, DeepseekV3Config, PreTrainedModel, Qwen2Config

# Parameters are count_parameters() for the 132-token char vocab (tied embeddings).
PRESETS: dict[str, dict[str, Any]] = {
    "tiny-1m": {  # 1,002,624: dense Qwen2, 5 x 128
        "arch": "qwen2",
        "hidden_size": 128,
        "intermediate_size": 384,
        "num_hidden_layers": 5,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
    },
    "tiny-2m": {  # 1,689,280: dense Qwen2, 5 x 160 (the ablation's teacher)
        "arch": "qwen2",
        "hidden_size": 160,
        "intermediate_size": 480,
        "num_hidden_layers": 5,
        "num_attention_heads": 5,
        "num_key_value_heads": 5,
    },
    "tiny-5m": {  # 4,758,784: dense Qwen2, 6 x 256
        "arch": "qwen2",
        "hidden_size": 256,
        "intermediate_size": 768,
        "num_hidden_layers": 6,
        "num_attention_heads": 8,
        "num_key_value_heads": 4,
    },
    "tiny-moe": {  # 6,415,872 (about 2.9M active per token): DeepSeek-V3, MLA + MoE, 4 x 256
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

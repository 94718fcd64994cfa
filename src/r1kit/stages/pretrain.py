"""`pretrain`: the tiny world's base model. A char tokenizer and a preset model, trained as a
plain LM on answer-only arithmetic (with `data.traces`, a share of it as worked solutions in the
recipe's style) plus the retention skills; cached on disk by its config, so every recipe built
on the same base trains it once."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from r1kit.ledger import TokenMeter
from r1kit.rundir import RunDir
from r1kit.stages.common import stage_data, training_paths

BASE_PROMPT_INFO = {"style": "answer", "chat": False}  # trained on answers: no trace style to inherit


def base_cache(run: RunDir, stage) -> Path:
    from r1kit.models import cache_root

    preset = stage.preset or run.recipe.model.preset
    config = {"preset": preset, "stage": stage.model_dump(mode="json", exclude={"name", "preset"}),
              "seed": run.recipe.seed, "format": 1}
    if stage.data.traces:  # trace rows are rendered in the recipe's style; a base without them keeps its key
        config["trace_style"] = run.recipe.style
    if levels := run.recipe.levels_used(stage.data):  # the recipe's own levels; a base without them keeps its key
        config["levels"] = levels
    key = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]
    return cache_root() / "base" / key


def run_pretrain(run: RunDir, stage, meter) -> None:
    from r1kit.distributed import broadcast, is_main, save_trained
    from r1kit.models import build_char_tokenizer, build_tiny_model, count_parameters
    from r1kit.train import train_sft

    out, cached = run.stage_dir(stage.name) / "model", base_cache(run, stage)
    if broadcast((cached / "config.json").is_file()):  # every rank takes rank 0's answer
        run.console.print(f"using the cached base model {cached}")
        if is_main():
            shutil.copytree(cached, out, dirs_exist_ok=True)
            if (cached / "metrics.jsonl").exists():
                shutil.copy(cached / "metrics.jsonl", run.stage_dir(stage.name) / "metrics.jsonl")
        return
    tokenizer = build_char_tokenizer()
    model = build_tiny_model(stage.preset or run.recipe.model.preset, tokenizer, seed=run.recipe.seed)
    meter.add(parameters=count_parameters(model))
    dataset = stage_data(run, stage, style=stage.data.style or "answer")
    paths = training_paths(run, stage)
    trainer = train_sft(model, tokenizer, dataset, train=stage.train, seed=run.recipe.seed, completion_only=False,
                        on_log=TokenMeter(meter, train_tokens=1), **paths)
    save_trained(trainer, tokenizer, out, prompt_info=BASE_PROMPT_INFO)
    if is_main():
        shutil.copytree(out, cached, dirs_exist_ok=True)
        shutil.copy(paths["metrics_path"], cached / "metrics.jsonl")

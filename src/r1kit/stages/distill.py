"""`distill`: a student learns from a teacher. `mode: sequence` is SFT on a collect stage's
verified traces; `mode: logit` is on-policy logit distillation (TRL's DistillationTrainer): the
student writes, and learns the teacher's next-token distribution on what it wrote."""

from __future__ import annotations

from r1kit.errors import R1kitError
from r1kit.ledger import FORWARD_FLOPS_PER_TOKEN, TokenMeter
from r1kit.rundir import RunDir
from r1kit.stages.collect import traces_dir, traces_style
from r1kit.stages.common import (budgeted, load_student, resolve_teacher, save_stage_data, save_student, stage_data,
                                 training_paths, training_style)
from r1kit.stages.sft import sft_on


def run_distill(run: RunDir, stage, meter) -> None:
    model, tokenizer = load_student(run, stage, meter)
    if stage.mode == "sequence":
        sequence_distill(run, stage, meter, model, tokenizer)
    else:
        logit_distill(run, stage, meter, model, tokenizer)


def sequence_distill(run: RunDir, stage, meter, model, tokenizer) -> None:
    from r1kit.teachers.collect import load_summary, traces_dataset

    folder, style = traces_dir(run, stage.traces), traces_style(run, stage.traces)
    if not load_summary(folder).traces_rows:
        # A result, not an error: the arm is reported as its untouched base, and the run goes on.
        from r1kit.models import save_model

        run.console.print(f"[bold yellow]warning:[/] the teacher of {stage.traces!r} had no answer verified; "
                          f"{stage.name!r} is its base model unchanged (see {folder / 'summary.json'})")
        save_model(model, tokenizer, run.stage_dir(stage.name) / "model", prompt_info={"style": style, "chat": run.recipe.chat})
        return
    dataset = traces_dataset(folder, conversational=run.recipe.chat)
    dataset = save_stage_data(run, stage, dataset.shuffle(seed=run.recipe.seed))
    sft_on(run, stage, meter, model, tokenizer, dataset, style)


def logit_distill(run: RunDir, stage, meter, model, tokenizer) -> None:
    from r1kit.models import count_parameters, load_model
    from r1kit.train.distill import train_logit_distill

    teacher_path = resolve_teacher(run, stage.teacher).target  # a local model: the recipe checked
    teacher, teacher_tokenizer = load_model(teacher_path, dtype=run.recipe.model.dtype)
    if teacher_tokenizer.get_vocab() != tokenizer.get_vocab():
        raise R1kitError(f"stage {stage.name!r}: logit distillation needs a teacher with the student's tokenizer; "
                         "distill across tokenizers with mode: sequence (verified traces)")
    style = training_style(run, stage, teacher_path)  # the student writes as its teacher does
    dataset = stage_data(run, stage, style=style, drop=("completion",))
    train, callbacks = budgeted(run, stage, model, tokenizer, dataset, "distill")
    # The student's tokens are generated and trained on (8·N each); the teacher scores them (2·N_teacher).
    on_log = TokenMeter(meter, generated_tokens=1, train_tokens=1, teacher_flops=float(FORWARD_FLOPS_PER_TOKEN * count_parameters(teacher)))
    trainer = train_logit_distill(model, teacher, tokenizer, dataset, train=train, seed=run.recipe.seed,
                                  on_log=on_log, callbacks=callbacks, budgeted=bool(stage.flops_budget),
                                  **training_paths(run, stage))
    save_student(run, stage, trainer, tokenizer, style)

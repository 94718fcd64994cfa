"""Recipes: a YAML file of ordered stages, validated completely before any work starts.

    name: quickstart
    model: {preset: tiny-5m}
    stages:
      - {name: base, kind: pretrain, data: {levels: 1-4, count: 20000}}
      - {name: sft, kind: sft, from: base, data: {levels: 1-3, count: 4000}}
      - {name: grpo, kind: grpo, from: sft, rewards: {accuracy: 1.0, steps: 0.5}}
      - {name: eval, kind: eval, models: [base, sft, grpo]}
      - {name: report, kind: report}

Every TRL config field can be set under a stage's `train:`; unknown keys, wrong types and
impossible values fail with one message (and "did you mean" for typos).
"""

from __future__ import annotations

import dataclasses
import os
import re
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, ValidationError,
                      field_validator, model_validator)

from r1kit.errors import R1kitError, suggest
from r1kit.expr import Granularity
from r1kit.teachers import TeacherSpec


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _known_preset(name: str | None) -> str | None:
    from r1kit.models import PRESETS

    if name is not None and name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}{suggest(name, PRESETS)}; presets: {', '.join(PRESETS)}")
    return name


Preset = Annotated[str | None, AfterValidator(_known_preset)]


LORA_KEYS = ("r", "alpha", "dropout", "target_modules")  # `models.apply_lora`'s settings


def _lora_keys(value: Any) -> Any:
    """A LoRA mapping names only what `apply_lora` takes: a typo fails before any work starts."""
    if isinstance(value, dict):
        for key in value:
            if key not in LORA_KEYS:
                raise ValueError(f"unknown LoRA key {key!r}{suggest(key, LORA_KEYS)}; "
                                 f"LoRA takes {', '.join(LORA_KEYS)}")
    return value


class ModelSpec(Strict):
    preset: Preset = None  # build a tiny model (the tiny world)
    path: str | None = None  # or load any HF causal LM by local path or hub id
    lora: Annotated[dict[str, Any] | None, AfterValidator(_lora_keys)] = None  # {r, alpha, dropout, target_modules}
    dtype: str | None = None  # "auto", "bfloat16", ...; default: bf16 on CUDA, fp32 on CPU

    @model_validator(mode="after")
    def one_source(self) -> ModelSpec:
        if (self.preset is None) == (self.path is None):
            raise ValueError("set exactly one of model.preset (a tiny model) or model.path (a HF model)")
        return self

    @field_validator("path")
    @classmethod
    def model_exists(cls, value: str | None) -> str | None:
        if value is not None:
            check_model_path(value)
        return value


def check_model_path(name: str) -> None:
    """A local model path must hold a model now, not when the first stage loads it (after a run
    directory and a ledger row exist). A hub id is left to the hub: it may be cached or online."""
    from r1kit.models import PACKAGED_MODELS, holds_model, looks_like_path

    if name.startswith("packaged:"):
        if name not in PACKAGED_MODELS:
            raise ValueError(f"no packaged model '{name}'; known: {', '.join(PACKAGED_MODELS)}")
        PACKAGED_MODELS[name]()  # its wheel must be installed now (a clear error says how)
        return
    path = Path(name).expanduser()
    if (path.exists() or looks_like_path(name)) and not holds_model(path):
        what_is = "is not a model (no config.json or .gguf file)" if path.exists() else "does not exist"
        raise ValueError(f"'{name}' {what_is}; give a directory written by save_pretrained / r1kit, a .gguf "
                         "file, or a hub id like Qwen/Qwen2.5-0.5B-Instruct")


def check_task_file(task: str) -> None:
    """`jsonl:<path>` tasks are read lazily, mid-run; check the file is there and UTF-8 up front."""
    from r1kit.files import check_utf8

    if task.startswith("jsonl:"):
        check_utf8(task.removeprefix("jsonl:"), "task file")


class DataSpec(Strict):
    model_config = ConfigDict(extra="forbid", validate_default=True)
    task: str | None = None  # default: the recipe's task
    levels: str | int | list[int] = "1-3"
    count: int = Field(1000, ge=1)
    style: str | None = None  # default: the recipe's style
    skills: float = Field(0.0, ge=0.0, lt=1.0)  # share of retention-skill rows (pretraining)
    # Share of the task's rows rendered in the recipe's trace style instead of `style` (pretraining).
    # Out of the dump when 0: a recipe without it keeps its stage hash and base cache key.
    traces: float = Field(0.0, ge=0.0, lt=1.0, exclude_if=lambda value: value == 0)
    granularity: Granularity | None = None  # the compiler's trace granularity (arithmetic)
    # Share of `count` per named level, e.g. {5: 0.02}; the levels not named split the rest evenly.
    # Out of the dump when absent: a recipe without it keeps its stage hash.
    shares: dict[int, float] | None = Field(None, exclude_if=lambda value: value is None)

    @model_validator(mode="before")
    @classmethod
    def renamed(cls, value: Any) -> Any:
        if isinstance(value, dict) and "fine_steps" in value:
            raise ValueError("unknown key 'fine_steps' (did you mean 'granularity'? fine_steps: true is "
                             "granularity: partial)")
        return value

    @field_validator("levels")
    @classmethod
    def parse(cls, value: Any) -> list[int]:
        from r1kit.data import parse_levels

        try:
            return parse_levels(value)
        except R1kitError as error:
            raise ValueError(str(error)) from None

    @model_validator(mode="after")
    def shares_of_levels(self) -> DataSpec:
        from r1kit.data import check_shares

        if self.shares is not None:
            try:
                check_shares(self.levels, self.shares)
            except R1kitError as error:
                raise ValueError(str(error)) from None
        return self


class StageBase(Strict):
    name: str


class PretrainStage(StageBase):
    kind: Literal["pretrain"]
    preset: Preset = None  # another tiny model than the recipe's (e.g. a bigger teacher)
    data: DataSpec = DataSpec(levels="1-4", count=20000, style="answer", skills=0.25)
    train: dict[str, Any] = {}


class Budgeted(StageBase):
    """`flops_budget`: train until the student has spent this many FLOPs (6·N per trained token,
    2·N per generated token) instead of for `max_steps`; the rule that makes ablation arms comparable."""

    flops_budget: float | None = Field(None, gt=0)
    train: dict[str, Any] = {}
    # This stage's LoRA {r, alpha, dropout, target_modules}, in place of the recipe's `model.lora`;
    # `false` trains it in full where the recipe's is set. Out of the dump when absent (stage hashes kept).
    lora: Annotated[dict[str, Any] | Literal[False] | None, AfterValidator(_lora_keys)] = Field(
        None, exclude_if=lambda value: value is None)

    @model_validator(mode="after")
    def budget_or_steps(self):
        if self.flops_budget is not None and "max_steps" in self.train:
            raise ValueError(f"stage {self.name!r}: set flops_budget or train.max_steps, not both")
        return self


class SFTStage(Budgeted):
    kind: Literal["sft"]
    from_: str = Field("model", alias="from")
    data: DataSpec = DataSpec()


class CurriculumSpec(Strict):
    """A grpo stage's `curriculum:` (off when absent): levels promoted by the rolling pass rate, and
    dynamic sampling on each problem's last group (`r1kit.train.curriculum`)."""

    levels: str | int | list[int] | None = None  # like data.levels; default: the stage's data levels
    start: int | None = None  # default: the first of `levels`
    promote_at: float = Field(0.8, gt=0, le=1)  # rolling pass rate of the active level that activates the next
    window: int = Field(64, ge=1)  # groups of the active level in that rolling pass rate
    lower_share: float = Field(0.25, ge=0, lt=1)  # share of each batch from the levels below the active one
    keep_zero_variance: float = Field(0.0, ge=0, le=1)  # chance of still drawing a problem whose last group was all-0/all-1

    @field_validator("levels")
    @classmethod
    def parse(cls, value: Any) -> list[int] | None:
        return None if value is None else DataSpec.parse(value)


class GRPOStage(Budgeted):
    kind: Literal["grpo"]
    from_: str = Field("model", alias="from")
    data: DataSpec = DataSpec()
    rewards: dict[str, float | dict[str, Any]] = {"accuracy": 1.0}
    # Out of the dump when absent: a recipe without one keeps its stage hash.
    curriculum: CurriculumSpec | None = Field(None, exclude_if=lambda value: value is None)
    # Blame a wrong completion only from its first wrong step (`r1kit.train.step_credit`); off by default.
    step_credit: bool = Field(False, exclude_if=lambda value: not value)

    @field_validator("rewards")
    @classmethod
    def known_rewards(cls, value: dict) -> dict:
        from r1kit import rewards

        try:
            rewards.build(value)
        except R1kitError as error:
            raise ValueError(str(error)) from None
        return value

    @model_validator(mode="after")
    def curriculum_levels(self):
        spec = self.curriculum
        if spec is None:
            return self
        if spec.levels is None:
            spec.levels = list(self.data.levels)
        outside = [level for level in spec.levels if level not in self.data.levels]
        if outside:
            raise ValueError(f"stage {self.name!r}: curriculum.levels {outside} are not in data.levels "
                             f"{self.data.levels}; the stage's data must hold every curriculum level")
        if spec.start is not None and spec.start not in spec.levels:
            raise ValueError(f"stage {self.name!r}: curriculum.start {spec.start} is not one of curriculum.levels "
                             f"{spec.levels}")
        if "accuracy" not in self.rewards:
            raise ValueError(f"stage {self.name!r}: the curriculum reads the accuracy reward's pass rates; "
                             "add `accuracy` to rewards")
        return self


def _teacher(value: Any) -> TeacherSpec:
    if isinstance(value, TeacherSpec):
        return value
    if not isinstance(value, str):
        raise ValueError("give a teacher as a stage name, a model path, local:PATH_OR_HUB_ID or openai:MODEL_NAME")
    try:
        return TeacherSpec.parse(value)
    except R1kitError as error:
        raise ValueError(str(error)) from None


# Parsed once here; dumped as written, which keeps the stage hash.
Teacher = Annotated[TeacherSpec, BeforeValidator(_teacher), PlainSerializer(lambda spec: spec.text)]


class CollectStage(StageBase):
    """A teacher answers generated problems; only verified traces are kept (rejection sampling)."""

    kind: Literal["collect"]
    teacher: Teacher  # a stage name, or local:PATH_OR_HUB_ID, or openai:MODEL_NAME
    teacher_options: dict[str, Any] = {}  # base_url, api_key_env, mode, concurrency, ...
    data: DataSpec = DataSpec()
    samples_per_problem: int = Field(4, ge=1, le=64)
    temperature: float = Field(0.8, ge=0.0)
    max_tokens: int = Field(256, ge=1)


class DistillStage(Budgeted):
    """A student learns from a teacher: `sequence` = SFT on a collect stage's verified traces;
    `logit` = on-policy distillation of the teacher's token distribution (same tokenizer)."""

    kind: Literal["distill"]
    from_: str = Field("model", alias="from")
    mode: Literal["sequence", "logit"] = "sequence"
    traces: str | None = None  # sequence: the collect stage whose traces to learn
    teacher: Teacher | None = None  # logit: a stage name or a local model path
    data: DataSpec = DataSpec()  # logit: the prompts the student answers

    @model_validator(mode="after")
    def inputs_for_mode(self) -> DistillStage:
        if self.mode == "sequence" and not self.traces:
            raise ValueError(f"stage {self.name!r}: sequence distillation needs traces: <a collect stage>")
        if self.mode == "logit" and not self.teacher:
            raise ValueError(f"stage {self.name!r}: logit distillation needs teacher: <a stage or model path>")
        if self.mode == "logit" and self.teacher.backend not in ("local", "stage"):
            raise ValueError(f"stage {self.name!r}: logit distillation needs the teacher's weights (a stage or a local "
                             f"model), not {self.teacher.text!r}; distill from an API with mode: sequence")
        return self


class EvalStage(StageBase):
    kind: Literal["eval"]
    models: list[str] = ["model"]
    data: DataSpec = DataSpec(levels="1-4", count=400)
    jsonl: str | None = None  # evaluate on a user's file instead of generated problems
    k: int = Field(1, ge=1)  # samples per problem for sampled@1, pass@k and maj@k (1: greedy only)
    # Sampling temperature of the k samples (greedy pass@1 does not sample); stated beside the sampled figures.
    # Out of the dump at 1.0 (the one value before it was a field): such a recipe keeps its stage hash.
    temperature: float = Field(1.0, gt=0, exclude_if=lambda value: value == 1.0)
    # Draw the k samples for only the first N problems of each level (None: all), so a large k stays affordable.
    sample_count: int | None = Field(None, ge=1, exclude_if=lambda value: value is None)
    # Pairs [new, baseline] compared besides each model against the one it was trained from, e.g.
    # [[grpo, sft_more]]: RL against more SFT for the same compute. Out of the dump when empty.
    compare: list[tuple[str, str]] = Field([], exclude_if=lambda value: not value)
    retention: bool = True  # also score the base model's other skills
    max_new_tokens: int = Field(96, ge=1)
    batch_size: int = Field(128, ge=1)
    engine: Literal["auto", "hf", "vllm"] = "auto"  # auto: vLLM when installed and on a GPU, else transformers

    @model_validator(mode="after")
    def compared_models_are_evaluated(self) -> EvalStage:
        for pair in self.compare:
            missing = [name for name in pair if name not in self.models]
            if missing or pair[0] == pair[1]:
                raise ValueError(f"stage {self.name!r}: compare {list(pair)} needs two different models of this "
                                 f"stage's models {self.models}")
        return self


class LmEvalStage(StageBase):
    """General-ability retention: lm-evaluation-harness tasks on each model, each compared item by
    item with the first (the baseline)."""
    kind: Literal["lm_eval"]
    models: list[str] = ["model"]
    tasks: list[str] = Field(["r1kit_basics"], min_length=1)  # lm-eval task/group names
    include_path: str | None = None  # a directory of your own task YAMLs
    limit: int | float | None = Field(None, gt=0)  # the first N items per task (a fraction if < 1); none: all
    num_fewshot: int | None = Field(None, ge=0)
    batch_size: int | Literal["auto"] = 8

    @field_validator("include_path")
    @classmethod
    def is_dir(cls, value: str | None) -> str | None:
        if value is not None and not Path(value).is_dir():
            raise ValueError(f"include_path {value} is not a directory (of lm-eval task YAML files)")
        return value

    @model_validator(mode="after")
    def installed(self) -> LmEvalStage:  # before any training runs, not after it
        import importlib.util

        if importlib.util.find_spec("lm_eval") is None:
            raise ValueError(f"stage {self.name!r} needs EleutherAI's lm-evaluation-harness: "
                             f"pip install 'r1kit[lmeval]' (or remove the stage)")
        return self


class ReportStage(StageBase):
    kind: Literal["report"]


Stage = Annotated[Union[PretrainStage, SFTStage, GRPOStage, CollectStage, DistillStage, EvalStage, LmEvalStage,
                        ReportStage],
                  Field(discriminator="kind")]
TRAINING_KINDS = ("pretrain", "sft", "grpo", "distill")


_KINDS = {"pretrain": PretrainStage, "sft": SFTStage, "grpo": GRPOStage, "collect": CollectStage,
          "distill": DistillStage, "eval": EvalStage, "lm_eval": LmEvalStage, "report": ReportStage}


def stage_inputs(stage) -> list[str]:
    """The names a stage reads: models (`from`, `models`, a teacher) and a collect stage's traces."""
    names = [stage.from_] if hasattr(stage, "from_") else list(getattr(stage, "models", []))
    teacher = getattr(stage, "teacher", None)
    if teacher and teacher.backend == "stage":
        names.append(teacher.target)
    if getattr(stage, "traces", None):
        names.append(stage.traces)
    return names


class Recipe(Strict):
    name: str
    # Your modules or .py files, imported before validation for the tasks and rewards they register.
    # Left out of the dump when empty, so manifests of recipes without it do not change.
    imports: list[str] = Field([], exclude_if=lambda value: not value)
    seed: int = 0
    task: str = "arithmetic"
    # The task's levels by their parameters: number → {like: N, field: value}; `like` starts from level N,
    # the other keys replace fields of the task's level (`r1kit levels`). Every stage sees them, and a
    # number the task has is redefined. Out of the dump when empty: a recipe without it keeps its hashes.
    levels: dict[int, dict[str, Any]] = Field({}, exclude_if=lambda value: not value)
    style: str = "compact"
    chat: bool = False  # conversational data and the tokenizer's chat template
    model: ModelSpec
    stages: list[Stage]
    smoke: dict[str, Any] = {}  # dotted overrides applied by --smoke

    @model_validator(mode="after")
    def consistent(self) -> Recipe:
        from r1kit import tasks
        from r1kit.files import check_utf8
        from r1kit.render import STYLES

        check_task_file(self.task)
        tasks.get(self.task)
        if self.levels:  # resolved once, in full: print-config, manifests and hashes show every parameter
            try:
                defined = tasks.get(self.task).define_levels(self.levels)
            except R1kitError as error:
                raise ValueError(str(error)) from None
            self.levels = {number: dataclasses.asdict(spec) for number, spec in defined.items()}
        if self.style not in STYLES:
            raise ValueError(f"unknown style {self.style!r}; styles: {', '.join(STYLES)}")
        seen: set[str] = {"model"}
        for stage in self.stages:
            if stage.name in seen:
                raise ValueError(f"stage name {stage.name!r} is used twice (or is the reserved name 'model')")
            for source in stage_inputs(stage):
                if source not in seen:
                    raise ValueError(f"stage {stage.name!r} reads {source!r}, which no earlier stage makes"
                                     f"{suggest(source, seen)}")
            if stage.kind in (*TRAINING_KINDS, "collect", "eval"):
                data = stage.data
                check_task_file(data.task or self.task)
                try:
                    task = self.task_for(data)
                    for level in (min(data.levels), max(data.levels), *data.levels):  # the ends first: "got 9" for 2-9
                        task.check_level(level)
                except R1kitError as error:
                    raise ValueError(f"stages.{stage.name}.data: {error}") from None
            if stage.kind in (*TRAINING_KINDS, "collect", "eval") and stage.data.traces:
                self._check_trace_share(stage)
            if getattr(stage, "jsonl", None):
                check_utf8(stage.jsonl, f"stages.{stage.name}.jsonl")
            if getattr(stage, "traces", None) and self.stage(stage.traces).kind != "collect":
                raise ValueError(f"stage {stage.name!r}: traces must name a collect stage, not {stage.traces!r}")
            if stage.kind == "pretrain" and self.model.preset is None and stage.preset is None:
                raise ValueError(f"stage {stage.name!r}: pretraining builds a tiny model; it needs model.preset")
            seen.add(stage.name)
        return self

    def _check_trace_share(self, stage) -> None:
        """`data.traces` mixes worked solutions into a base's answer-only pretraining rows; anywhere
        else it would mean nothing (other stages render every row in one style, or drop completions)."""
        where = f"stages.{stage.name}.data.traces"
        if stage.kind != "pretrain":
            raise ValueError(f"{where}: only a pretrain stage mixes trace rows into its data; {stage.kind} stages render "
                             "every row in one style (set data.style instead)")
        style = stage.data.style or "answer"
        if self.style == "answer":
            raise ValueError(f"{where}: trace rows are rendered in the recipe's style, and it is 'answer' "
                             "(no trace); set style: to a trace style such as compact")
        if self.style == style:
            raise ValueError(f"{where}: trace rows are rendered in the recipe's style {self.style!r}, which is "
                             f"already this stage's data.style; the share means nothing")

    def stage(self, name: str):
        return next(s for s in self.stages if s.name == name)

    def task_for(self, data: DataSpec | None = None, **options: Any):
        """The task `data` names (default: the recipe's), built with `options`; the recipe's own task
        comes with the recipe's `levels:`, so every stage draws the same levels."""
        from r1kit import tasks

        name = (data.task if data else None) or self.task
        task = tasks.get(name, **options)
        return task.with_levels(self.levels) if name == self.task else task

    def levels_used(self, data: DataSpec) -> dict[int, dict[str, Any]]:
        """The recipe's own levels among `data`'s: what the hash of a stage drawing them adds."""
        if (data.task or self.task) != self.task:
            return {}
        return {level: self.levels[level] for level in data.levels if level in self.levels}

    def started_from(self, name: str) -> list[str]:
        """The models `name` was trained from, nearest first, following `from:` back to a pretrain
        stage (trained from scratch) or the recipe's own model (`model`)."""
        chain = []
        while name != "model" and hasattr(self.stage(name), "from_"):
            name = self.stage(name).from_
            chain.append(name)
        return chain


# ---------------------------------------------------------------- loading


class _RecipeLoader(yaml.SafeLoader):
    """YAML 1.1 floats need a dot, so `learning_rate: 5e-5` would be the string '5e-5'; a recipe
    (and `--set`) means the number."""


_RecipeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"), list("-+0123456789"))


def read_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_RecipeLoader)  # noqa: S506 (a SafeLoader subclass)


def shipped() -> dict[str, Path]:
    """The recipes inside the package, by name (the file's stem)."""
    from importlib.resources import files

    folder = Path(str(files("r1kit") / "recipes"))
    return {path.stem: path for path in sorted(folder.glob("*.yaml"))}


def shipped_recipe(name: str) -> Path:
    recipes = shipped()
    if name not in recipes:
        raise R1kitError(f"no shipped recipe {name!r}{suggest(name, recipes)}; shipped: {', '.join(recipes)}")
    return recipes[name]


def find(path: str | Path) -> Path:
    """A recipe file: the local file if there is one, else a shipped recipe named `quickstart`,
    `quickstart.yaml` or `recipes/quickstart.yaml` (so the README's commands work from anywhere)."""
    path = Path(path)
    if path.is_file():
        return path
    name = path.stem if path.suffix in (".yaml", ".yml") else path.name
    if path.parent in (Path("."), Path("recipes")) and name in shipped():
        return shipped()[name]
    raise R1kitError(f"no recipe at {path}{suggest(name, shipped())}; shipped recipes (r1kit recipes): "
                     f"{', '.join(shipped())}")


def load(path: str | Path, overrides: list[str] | None = None, *, smoke: bool = False,
         processes: int | None = None) -> Recipe:
    """Read, import the recipe's `imports:`, override (`key.sub=value`, stages addressed by name),
    validate; or one clear error. `processes`: how many will train (default: this launch's
    WORLD_SIZE, 1 without a launcher)."""
    from r1kit.files import check_utf8

    path = find(path)
    check_utf8(path, "recipe")
    try:
        raw = read_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise R1kitError(f"{path} is not valid YAML{where}: {getattr(error, 'problem', error)}") from None
    if not isinstance(raw, dict):
        raise R1kitError(f"{path} must hold a mapping with name, model and stages")
    if smoke:
        for key, value in (raw.get("smoke") or {}).items():
            apply_override(raw, key, value)
    for item in overrides or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise R1kitError(f"--set needs key=value, got {item!r}")
        apply_override(raw, key.strip(), read_yaml(value))
    import_user_code(raw.get("imports"), path.parent, source=str(path))  # their tasks and rewards, before validation
    return validate(raw, source=str(path), processes=processes)


def import_user_code(entries: Any, base: Path, *, source: str = "recipe") -> None:
    """`imports:` a list of module names (importable, or beside the recipe) and `.py` files
    (relative to the recipe), imported for what they register: tasks, rewards."""
    import importlib
    import sys

    if entries is None:
        return
    if not isinstance(entries, list) or not all(isinstance(entry, str) and entry for entry in entries):
        raise R1kitError(f"{source}: imports must be a list of module names or .py files, got {entries!r}")
    for entry in entries:
        try:
            if entry.endswith(".py") or "/" in entry:
                _import_file((base / entry).resolve(), source)
            else:
                if str(base.resolve()) not in sys.path:
                    sys.path.insert(0, str(base.resolve()))
                importlib.import_module(entry)
        except R1kitError:
            raise
        except Exception as error:  # the user's code: one line naming where it failed
            raise R1kitError(f"{source}: imports: {entry} failed: {_user_line(error)}{type(error).__name__}: {error}") from None


def _import_file(file: Path, source: str) -> None:
    import hashlib
    import importlib.util
    import sys

    if not file.is_file():
        raise R1kitError(f"{source}: imports: no file at {file}")
    name = f"{file.stem}_{hashlib.sha256(str(file).encode()).hexdigest()[:8]}"  # one module per file, any name
    if name in sys.modules:  # a second load of the same recipe registers nothing twice
        return
    spec = importlib.util.spec_from_file_location(name, file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look their module up here
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise


def _user_line(error: BaseException) -> str:
    """`file.py:12: ` for the innermost frame of the user's code, when there is one."""
    import importlib
    import traceback

    machinery = (str(Path(__file__).parent), str(Path(importlib.__file__).parent), "<frozen")  # r1kit's, importing
    frames = [f for f in traceback.extract_tb(error.__traceback__) if not f.filename.startswith(machinery)]
    return f"{frames[-1].filename}:{frames[-1].lineno}: " if frames else ""


def validate(raw: dict, source: str = "recipe", *, processes: int | None = None) -> Recipe:
    try:
        recipe = Recipe.model_validate(raw)
    except ValidationError as error:
        raise R1kitError(f"{source}: {_explain(error, raw)}") from None
    except R1kitError as error:
        raise R1kitError(f"{source}: {error}") from None
    processes = processes or int(os.environ.get("WORLD_SIZE", "1"))
    for stage in recipe.stages:
        if stage.kind in TRAINING_KINDS:
            _check_train(stage, source, recipe.seed, processes)
        if stage.kind == "grpo" and stage.curriculum and processes > 1:
            raise R1kitError(f"{source}: stages.{stage.name}.curriculum runs in one process only (each "
                             "process would see only its own groups); remove it or launch one process")
    return recipe


def apply_override(raw: dict, key: str, value: Any) -> None:
    node: Any = raw
    parts = key.split(".")
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):  # stages are addressed by name
            match = [s for s in node if isinstance(s, dict) and s.get("name") == part]
            if not match:
                names = [s.get("name") for s in node if isinstance(s, dict)]
                raise R1kitError(f"--set {key}: no stage named {part!r}{suggest(part, names)}")
            if last:
                raise R1kitError(f"--set {key}: set a field of the stage, e.g. {key}.train.max_steps=10")
            node = match[0]
        elif isinstance(node, dict):
            if part not in node and part.isdigit() and int(part) in node:  # YAML's `5:` is the number 5
                part = int(part)
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
        else:
            raise R1kitError(f"--set {key}: {'.'.join(parts[:i])} is not a mapping")


def _explain(error: ValidationError, raw: dict) -> str:
    """Pydantic's first error in r1kit's one-line style: where (stages by name), then what is wrong."""
    first = error.errors()[0]
    where = _where_in(first["loc"], raw)
    kind, got = first["type"], first.get("input")
    context = first.get("ctx") or {}
    if kind == "extra_forbidden":
        model = _model_at(first["loc"])
        known = list(model.model_fields) if model else []
        aliases = [f.alias for f in model.model_fields.values() if f.alias] if model else []
        return f"unknown key {where!r}{suggest(first['loc'][-1], known + aliases)}"
    if kind == "union_tag_invalid":
        tag = context.get("tag")
        return f"{where}.kind: unknown kind {tag!r}{suggest(tag, _KINDS)}; kinds: {', '.join(_KINDS)}"
    if kind == "union_tag_not_found":
        return f"{where}: missing kind; kinds: {', '.join(_KINDS)}"
    if kind == "missing":
        return f"{where}: required"
    if kind in _MUST_BE:
        return f"{where}: must be {_MUST_BE[kind]}, got {got!r}"
    if kind in _BOUNDS:
        word, key = _BOUNDS[kind]
        bound = context[key]
        return f"{where}: must be {word} {f'{bound:g}' if isinstance(bound, float) else bound}, got {got!r}"
    if kind == "literal_error":
        return f"{where}: must be one of {context['expected'].replace(' or ', ', ')}, got {got!r}"
    message = first["msg"].removeprefix("Value error, ")
    return f"{where}: {message}" if where != "recipe" else message


# pydantic's error type → what the value must be (or its bound), in words
_MUST_BE = {"int_parsing": "an integer", "int_type": "an integer", "int_from_float": "a whole number",
            "float_parsing": "a number", "float_type": "a number", "bool_parsing": "true or false",
            "bool_type": "true or false", "string_type": "text", "list_type": "a list", "dict_type": "a mapping",
            "model_type": "a mapping", "model_attributes_type": "a mapping"}
_BOUNDS = {"greater_than": ("more than", "gt"), "greater_than_equal": ("at least", "ge"),
           "less_than": ("less than", "lt"), "less_than_equal": ("at most", "le"),
           "too_short": ("a list of at least", "min_length")}


def _where_in(loc: tuple, raw: dict) -> str:
    """`stages.sft.data.count`: stages by their name (else `stages[1]`), without pydantic's name
    for the union member."""
    where, node = "", raw
    for part in loc:
        if isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
            name = node.get("name") if isinstance(node, dict) else None
            where += f".{name}" if isinstance(name, str) and name else f"[{part}]"
        elif isinstance(node, dict) and part in node:
            node = node[part]
            where += f".{part}"
        elif part not in _KINDS:  # pydantic's name for the union member
            node = None
            where += f".{part}"
    return where.lstrip(".") or "recipe"


def _model_at(loc: tuple) -> type[BaseModel] | None:
    model: type[BaseModel] = Recipe
    for part in loc[:-1]:
        if part in _KINDS:
            model = _KINDS[part]
        elif isinstance(part, str) and part in model.model_fields:
            annotation = model.model_fields[part].annotation
            inner = [a for a in typing.get_args(annotation) if isinstance(a, type) and issubclass(a, BaseModel)]
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                model = annotation
            elif inner:
                model = inner[0]
    return model


def trainer_kind(stage) -> str:
    """Which TRL config a training stage's `train:` fills (`r1kit.train.config.config_class`)."""
    if stage.kind == "grpo":
        return "grpo"
    return "distill" if stage.kind == "distill" and stage.mode == "logit" else "sft"


def _check_train(stage, source: str, seed: int, processes: int) -> None:
    """Build the stage's TRL config now, so TRL's own checks fail before any stage has trained
    (before a launch TRL sees one process, under it all of them)."""
    from r1kit.train.config import trainer_config

    unseen = max(1, processes // int(os.environ.get("WORLD_SIZE", "1")))
    try:
        trainer_config(trainer_kind(stage), stage.train, output_dir="unused", seed=seed, processes=unseen,
                       completion_only=stage.kind != "pretrain", where=f"stages.{stage.name}.train")
    except R1kitError as error:
        raise R1kitError(f"{source}: {error}") from None

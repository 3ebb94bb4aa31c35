"""``python -m benchmarks`` (``make bench``): run the benchmarks, print a table, rewrite BENCHMARKS.md.

    python -m benchmarks                      # everything: startup, throughput, engine, memory, fixture
    python -m benchmarks --quick              # fewer rounds, shorter runs (a smoke test, a few minutes)
    python -m benchmarks --only throughput    # one or more of: startup, throughput, engine, timeline, callbacks,
                                              # memory, fixture, workflow, ui
    python -m benchmarks --no-write           # print the table, leave BENCHMARKS.md alone

Comparisons run every system in the same run, in alternating rounds, and report medians and ratios.
All traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import shutil
import sys
from collections.abc import Callable

from .harness import ROOT, Progress, Report, Row, ensure_prism, machine

NAMES = ("startup", "throughput", "engine", "timeline", "callbacks", "memory", "fixture", "workflow", "ui")


def _fixture(progress: Progress) -> Report:
    """The colleague's fixture budget (benchmarks/fixture_bench.py, ``run() -> dict``), if present."""
    try:
        mod = importlib.import_module("benchmarks.fixture_bench")
    except ModuleNotFoundError as exc:
        if exc.name != "benchmarks.fixture_bench":
            raise
        return Report(notes=["Fixture budget: benchmarks/fixture_bench.py is not there yet; skipped."])
    progress.step("fixture: benchmarks.fixture_bench.run()")
    result = mod.run()
    rows = [Row(f"fixture: {key}", _fmt(value)) for key, value in result.items()]
    return Report(rows=rows, commands=["python -m benchmarks --only fixture"])


def _ui(progress: Progress, messages: int) -> Report:
    """The dashboard's first screen with ``messages`` messages in Debian's chromium (benchmarks/ui_first_screen.py)."""
    progress.step(f"ui: the dashboard's first screen with {messages:,} messages (chromium)")
    try:
        result = importlib.import_module("benchmarks.ui_first_screen").run(messages)
    except Exception as exc:  # no chromium or playwright here: say so in the report, run the rest
        return Report(notes=[f"UI first screen: not measured ({type(exc).__name__}: {exc})."])
    row = Row(
        f"dashboard /_sim/ui: first screen with {messages:,} messages (chromium, median of 5 loads)",
        f"{result['first_screen_ms_median']:,.0f} ms (max {result['first_screen_ms_max']:,.0f} ms)",
        f"every row loaded {result['all_rows_ms_median']:,.0f} ms; a filter {result['filter_ms_median']:,.0f} ms",
        "< 1 s",
        result["first_screen_ms_median"] < 1000,
    )
    return Report(rows=[row], commands=["python -m benchmarks.ui_first_screen --messages 10000"])


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items())
    return str(value)


def table(rows: list[Row]) -> str:
    """The result table in Markdown (also readable in a terminal)."""
    head = ["Benchmark", "qstash-sim", "Compared with", "Target", "Met"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for r in rows:
        met = "" if r.met is None else ("yes" if r.met else "**no**")
        lines.append(f"| {r.what} | {r.result} | {r.compared} | {r.target} | {met} |")
    return "\n".join(lines)


def write_markdown(report: Report, argv: list[str], machine_text: str, started: dt.datetime, seconds: float) -> None:
    """Rewrite BENCHMARKS.md with the machine, the date, the exact commands and the table."""
    invoked = "python -m benchmarks" + (" " + " ".join(argv) if argv else "")
    cmds = "\n".join(f"    {c}" for c in dict.fromkeys(report.commands))
    notes = "\n".join(f"* {n}" for n in report.notes)
    text = f"""# Benchmarks

Written by `{invoked}` (`make bench ARGS='{" ".join(argv)}'`) on {started:%Y-%m-%d %H:%M} UTC, in {seconds:.0f} s.
Re-run it to refresh this file; numbers from another machine are not comparable.

**Machine:** {machine_text}

{table(report.rows)}

## Commands

Servers under test (each on a free 127.0.0.1 port, one at a time) and the load:

{cmds}

## How it is measured

{notes}
"""
    (ROOT / "BENCHMARKS.md").write_text(text)


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default=",".join(NAMES), help=f"comma-separated subset of {', '.join(NAMES)}")
    parser.add_argument(
        "--rounds", type=int, default=None, help="alternating rounds per comparison (default 5, quick 2)"
    )
    parser.add_argument("--seconds", type=float, default=None, help="wrk duration per round (default 5, quick 2)")
    parser.add_argument("--connections", type=int, default=16, help="wrk keep-alive connections (default 16)")
    parser.add_argument("--quick", action="store_true", help="fewer rounds, shorter runs, smaller engine sizes")
    parser.add_argument("--no-prism", action="store_true", help="skip Prism (no npm install)")
    parser.add_argument("--no-write", action="store_true", help="do not rewrite BENCHMARKS.md")
    args = parser.parse_args(argv)
    chosen = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in NAMES]
    if unknown:
        parser.error(f"--only: unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(NAMES)}")
    rounds = args.rounds or (2 if args.quick else 5)
    seconds = args.seconds or (2.0 if args.quick else 5.0)
    if {"throughput"} & set(chosen) and shutil.which("wrk") is None:
        parser.error("wrk is not installed: apt-get install -y wrk (or leave out throughput with --only)")

    started = dt.datetime.now(dt.UTC)
    progress = Progress()
    prism = None
    if not args.no_prism and {"startup", "throughput"} & set(chosen):
        prism = ensure_prism(progress)
    report = Report()
    if (args.no_prism or prism is None) and {"startup", "throughput"} & set(chosen):
        report.notes.append("Prism was not run (--no-prism, or npm could not install it): no Prism ratios.")
    runners: dict[str, Callable[[], Report]] = {
        "startup": lambda: importlib.import_module("benchmarks.startup").run(
            progress, rounds=max(rounds, 5), prism=prism
        ),
        "throughput": lambda: importlib.import_module("benchmarks.throughput").run(
            progress, rounds=rounds, seconds=seconds, connections=args.connections, prism=prism
        ),
        "engine": lambda: importlib.import_module("benchmarks.engine_scaling").run(
            progress, **({"sizes": (1_000, 10_000), "fixed": 2_000, "real": 500} if args.quick else {})
        ),
        "timeline": lambda: importlib.import_module("benchmarks.timeline").run(progress, quick=args.quick),
        "memory": lambda: importlib.import_module("benchmarks.memory").run(
            progress, **({"requests": 200_000, "before_requests": 100_000} if args.quick else {})
        ),
        "callbacks": lambda: importlib.import_module("benchmarks.callback_chain").run(
            progress, rounds=5 if args.quick else 20
        ),
        "ui": lambda: _ui(progress, 2_000 if args.quick else 10_000),
        "fixture": lambda: _fixture(progress),
        "workflow": lambda: importlib.import_module("benchmarks.workflow_run").run(
            progress, **({"runs": 3, "rounds": 1} if args.quick else {})
        ),
    }
    for name in chosen:
        part = runners[name]()
        report.rows += part.rows
        report.commands += part.commands
        report.notes += part.notes
    progress.done()
    elapsed = (dt.datetime.now(dt.UTC) - started).total_seconds()
    machine_text = machine()
    print(f"\n{machine_text}\n")
    print(table(report.rows))
    if not args.no_write:
        write_markdown(report, argv, machine_text, started, elapsed)
        print(f"\nwritten to {ROOT / 'BENCHMARKS.md'}")
    missed = [r.what for r in report.rows if r.met is False]
    if missed:
        print("\nmissed: " + "; ".join(missed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

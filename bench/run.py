"""Run the benchmarks and rewrite docs/BENCHMARKS.md.

python -m bench.run [--quick] [--only SECTION] [--database-url URL] [--broker-url URL]
    [--seconds N] [--report PATH]

With --only, that section of the report is replaced and the others are kept. --quick
(`make bench-quick`) uses smaller data and fewer runs and leaves out the sections in
NOT_QUICK, for a check in a few minutes; the report says so. --report writes elsewhere
(charts go to bench/ beside it), to try a run without touching docs/.
"""

import argparse
import datetime
import importlib
import itertools
import os
import secrets
import sys
import time
import traceback
from pathlib import Path

from bench import charts
from bench.common import REPORT, machine, setup_django, table

# Sections whose module writes its whole part of the report: `run(quick)` gives the
# Markdown lines, starting with the section's own "## " heading.
MODULES = {
    "embedders": "bench.embedders",
    "scale": "bench.scale",
    "active": "bench.active",
    "similar": "bench.similar",
    "queues": "bench.queues",
    "training": "bench.training",
}
SECTIONS = [
    "inputs",
    "models",
    "evaluations",
    "accuracy",
    "predictions",
    "memory",
    "load",
    *MODULES,
]
# Quick mode leaves out what takes minutes whatever the size: the accuracy tables (many
# trainings on the public sets) and the load run (16 users' apps to set up first).
NOT_QUICK = ("evaluations", "accuracy", "load")

# Jobs the benchmarks queue (embedding after an upload, training) are run in-process; their
# messages go to a Redis database of their own, emptied at the end, never to the real queue.
BENCH_BROKER = "redis://127.0.0.1:6379/15"


def load_average() -> str:
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


def queue_note(url: str) -> str:
    """Empty the benchmark's Redis database; say what the queue was, for the report."""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.flushdb()
    except redis.RedisError:
        return "none answered: jobs were run in-process and the enqueue step skipped"
    finally:
        client.close()
    return f"Redis at {url} (enqueued messages deleted afterwards); jobs run in-process"


def replace_section(lines: list[str], section: list[str]) -> list[str]:
    """The report's lines with the section of the same "## " heading replaced, or added
    at the end."""
    starts = [i for i, line in enumerate(lines) if line.startswith("## ")] + [len(lines)]
    for start, end in itertools.pairwise(starts):
        if lines[start] == section[0]:
            return [*lines[:start], *section, *lines[end:]]
    return [*lines, *([""] if lines and lines[-1] else []), *section]


def module_section(name: str, module: str, quick: bool, alone: bool) -> list[str]:
    """The section a module writes. If it is missing or fails in a run of all sections, a
    section that says so, so that one broken section never costs the others their figures;
    run alone, the error stops the run and the report is left as it was."""
    try:
        return importlib.import_module(module).run(quick)
    except Exception as error:  # any failure is reported and the run goes on
        if alone:
            raise
        traceback.print_exc()
        return [
            f"## {name.capitalize()}",
            "",
            f"Not measured: `{module}` failed ({type(error).__name__}: {error}).",
        ]


def section(name: str, quick: bool, seconds: float | None, alone: bool) -> list[str]:
    """The report's lines for one section, starting with its "## " heading."""
    from bench import accuracy, evaluations, inputs, load, memory, models, predict

    if name == "inputs":
        results = inputs.run(quick)
        return ["## Inputs", "", *table(results), "", inputs.chart(results), ""]
    if name == "models":
        results = models.run(quick)
        lines = ["## Models", "", *table(results), ""]
        lines += [*models.charts_lines(results), "", "### Accuracy", ""]
        if quick:
            return [*lines, "_Not measured in quick mode._", ""]
        return [*lines, *models.accuracy(), ""]
    if name == "evaluations":
        return ["## Evaluations", "", *evaluations.accuracy(), ""]
    if name == "accuracy":
        return ["## Accuracy: hybrid and Auto heads", "", *accuracy.run(quick), ""]
    if name == "predictions":
        results, load_rows, chart_lines = predict.run(quick)
        return [
            "## Predictions",
            "",
            *table(results),
            "",
            "Predict API under load: one sentence per request, gunicorn with 2 sync worker",
            "processes (as the Dockerfile, which runs 3) and production settings (DEBUG off);",
            "an API token; the clients (threads of one Python process) share the 2 cores.",
            "",
            "| clients | duration | requests | errors | requests/s | p50 | p99 |",
            "|---|---|---|---|---|---|---|",
            *load_rows,
            "",
            *chart_lines,
            "",
        ]
    if name == "memory":
        return memory.run(quick)
    if name == "load":
        return load.run(seconds or (15 if quick else 60))
    return [*module_section(name, MODULES[name], quick, alone), ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller data, fewer runs")
    parser.add_argument(
        "--only", choices=SECTIONS, help="run one section, keeping the others in the report"
    )
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    parser.add_argument(
        "--broker-url",
        default=BENCH_BROKER,
        help=f"a Redis database the benchmarks may empty (default: {BENCH_BROKER})",
    )
    parser.add_argument(
        "--seconds", type=float, help="length of the load run (default: 60, quick: 15)"
    )
    parser.add_argument(
        "--report",
        type=Path,
        default=REPORT,
        help=f"where to write the report; its charts go to bench/ beside it (default: {REPORT})",
    )
    args = parser.parse_args()
    os.environ["REDIS_URL"] = args.broker_url
    # The web server runs with production settings, which refuse the development key;
    # the sessions the benchmarks create must be signed with the server's key.
    os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(50))
    charts.CHARTS = args.report.parent / "bench"
    load_before = load_average()
    started = time.monotonic()
    setup_django(args.database_url)

    from django.db import connection

    if args.only:
        names = [args.only]
    else:
        names = [n for n in SECTIONS if not (args.quick and n in NOT_QUICK)]
    sections = []
    try:
        for name in names:
            began = time.monotonic()
            sections += section(name, args.quick, args.seconds, alone=bool(args.only))
            sys.stderr.write(f"bench: {name} took {time.monotonic() - began:.0f} s\n")
    finally:
        queue = queue_note(args.broker_url)
    mode = "quick" if args.quick else "full"
    load_after = load_average()
    took = f"{(time.monotonic() - started) / 60:.1f} min"
    skipped = [n for n in SECTIONS if n not in names]
    report = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`python -m bench.run`); do not edit by hand.",
        "",
        f"- Run: {datetime.date.today()}, {mode} mode, database {connection.vendor}, {took}",
        f"- Machine: {machine()}",
        f"- Load average (1, 5, 15 min): {load_before} before, {load_after} after; a load above",
        "  the number of cores means other work shared the machine and slowed every figure",
        f"- Job queue: {queue}",
        "- Each figure is the median of several runs, with min–max; the raw library does",
        "  the same work in the same run.",
        *(
            [
                "- Quick mode: smaller data and fewer runs (each figure's name gives its size);",
                f"  not run: {', '.join(skipped)}, and in Models the first-ever training and the",
                "  accuracy table (`make bench` runs them)",
            ]
            if args.quick
            else []
        ),
        "",
        *sections,
    ]
    if args.only and args.report.exists():
        note = (
            f"Run alone on {datetime.date.today()} ({mode} mode, database {connection.vendor},"
            f" {took}); load average (1, 5, 15 min) {load_before} before, {load_after} after."
        )
        report = replace_section(
            args.report.read_text().splitlines(), [*sections[:2], note, "", *sections[2:]]
        )
        # The same machine; its description gains what newer versions of this script say.
        report = [f"- Machine: {machine()}" if m.startswith("- Machine: ") else m for m in report]
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text("\n".join(report).rstrip("\n") + "\n")
    sys.stdout.write("\n".join(report) + "\n")
    sys.stderr.write(f"bench: {took} in all; report written to {args.report}\n")


if __name__ == "__main__":
    main()

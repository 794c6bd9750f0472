"""Run the benchmarks and rewrite docs/BENCHMARKS.md.

python -m bench.run [--quick] [--only inputs|models|predictions|evaluations|accuracy|load]
    [--database-url URL] [--broker-url URL] [--seconds N]

With --only, that section of the report is replaced and the others are kept.
"""

import argparse
import datetime
import itertools
import os
import secrets
import sys

from bench.common import REPORT, Result, machine, setup_django

SECTIONS = ["inputs", "models", "predictions", "evaluations", "accuracy", "load"]

# Jobs the benchmarks queue (embedding after an upload, training) are run in-process; their
# messages go to a Redis database of their own, emptied at the end, never to the real queue.
BENCH_BROKER = "redis://127.0.0.1:6379/15"


def seconds(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def table(results: list[Result]) -> list[str]:
    lines = [
        "| figure | ours: median (min–max) | raw library: median (min–max) | ours / raw | note |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        ours = f"{seconds(r.ours.median)} ({seconds(r.ours.low)}–{seconds(r.ours.high)})"
        raw = f"{seconds(r.raw.median)} ({seconds(r.raw.low)}–{seconds(r.raw.high)})"
        lines.append(f"| {r.name} | {ours} | {raw} | {r.ratio:.2f}× | {r.note} |")
    return lines


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
    args = parser.parse_args()
    os.environ["REDIS_URL"] = args.broker_url
    # The web server runs with production settings, which refuse the development key;
    # the sessions the benchmarks create must be signed with the server's key.
    os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(50))
    load_before = load_average()
    setup_django(args.database_url)

    from django.db import connection

    from bench import accuracy, evaluations, inputs, load, models, predict

    sections = []
    try:
        if args.only in (None, "inputs"):
            sections += ["## Inputs", "", *table(inputs.run(args.quick)), ""]
        if args.only in (None, "models"):
            results = models.run(args.quick)
            sections += ["## Models", "", *table(results), "", "### Accuracy", ""]
            sections += [*models.accuracy(), ""]
        if args.only in (None, "evaluations"):
            sections += ["## Evaluations", "", *evaluations.accuracy(), ""]
        if args.only in (None, "accuracy"):
            sections += ["## Accuracy: hybrid and Auto heads", "", *accuracy.run(args.quick), ""]
        if args.only in (None, "predictions"):
            results, load_rows = predict.run(args.quick)
            sections += [
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
            ]
        if args.only in (None, "load"):
            sections += load.run(args.seconds or (15 if args.quick else 60))
    finally:
        queue = queue_note(args.broker_url)
    mode = "quick" if args.quick else "full"
    load_after = load_average()
    report = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`python -m bench.run`); do not edit by hand.",
        "",
        f"- Run: {datetime.date.today()}, {mode} mode, database {connection.vendor}",
        f"- Machine: {machine()}",
        f"- Load average (1, 5, 15 min): {load_before} before, {load_after} after; a load above",
        "  the number of cores means other work shared the machine and slowed every figure",
        f"- Job queue: {queue}",
        "- Each figure is the median of several runs, with min–max; the raw library does",
        "  the same work in the same run.",
        "",
        *sections,
    ]
    if args.only and REPORT.exists():
        note = (
            f"Run alone on {datetime.date.today()} ({mode} mode, database {connection.vendor});"
            f" load average (1, 5, 15 min) {load_before} before, {load_after} after."
        )
        report = replace_section(
            REPORT.read_text().splitlines(), [*sections[:2], note, "", *sections[2:]]
        )
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text("\n".join(report))
    sys.stdout.write("\n".join(report) + "\n")


if __name__ == "__main__":
    main()

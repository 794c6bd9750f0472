"""Run the benchmarks and rewrite docs/BENCHMARKS.md.

python -m bench.run [--quick] [--database-url URL]
"""

import argparse
import datetime
import sys

from bench.common import REPORT, Result, machine, setup_django


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller data, fewer runs")
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    args = parser.parse_args()
    setup_django(args.database_url)

    from django.db import connection

    from bench import inputs

    results = inputs.run(args.quick)
    mode = "quick" if args.quick else "full"
    report = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`python -m bench.run`); do not edit by hand.",
        "",
        f"- Run: {datetime.date.today()}, {mode} mode, database {connection.vendor}",
        f"- Machine: {machine()}",
        "- Each figure is the median of several runs, with min–max; the raw library does",
        "  the same work in the same run.",
        "",
        "## Inputs",
        "",
        *table(results),
        "",
    ]
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text("\n".join(report))
    sys.stdout.write("\n".join(report) + "\n")


if __name__ == "__main__":
    main()

"""Shared pieces of the benchmarks: a throwaway database, timing, the report."""

import os
import platform
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "docs" / "BENCHMARKS.md"

WORDS = """
account after again answer around because before between bring cheap claim could delivery
dinner email every family free friend great happy holiday invoice later meeting message money
night offer order please prize project quick reply report right school service should soon
thanks ticket today tomorrow urgent visit week win winner work would yesterday
""".split()


def setup_django(database_url: str | None = None) -> None:
    """Use a fresh database so a benchmark never touches real data."""
    if database_url is None:
        folder = Path(tempfile.mkdtemp(prefix="portal-bench-"))
        database_url = f"sqlite:///{folder / 'bench.sqlite3'}"
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def sentences(count: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    return [
        f"{i} " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(10, 20)))
        for i in range(count)
    ]


@dataclass(frozen=True)
class Stats:
    median: float
    low: float
    high: float
    runs: int

    def __str__(self) -> str:
        return f"{self.median:.3f} s (min {self.low:.3f}, max {self.high:.3f}, {self.runs} runs)"


def measure(run: Callable[[], object], runs: int, before: Callable[[], object] = lambda: None):
    """Median, min and max wall time of `run`, calling `before` (untimed) each time."""
    times = []
    for _ in range(runs):
        before()
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return Stats(statistics.median(times), min(times), max(times), runs)


LIBRARIES = ("torch", "sentence-transformers", "scikit-learn", "onnxruntime", "Django", "celery")


def machine() -> str:
    """CPU, cores, memory, Python and the versions of the libraries the figures depend on."""
    from importlib import metadata

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if "model name" in line)
    except (OSError, StopIteration):
        pass
    memory = ""
    try:
        with open("/proc/meminfo") as info:
            kib = next(int(line.split()[1]) for line in info if line.startswith("MemTotal:"))
        memory = f"{kib / 1024**2:.1f} GiB RAM, "
    except (OSError, StopIteration):
        pass
    versions = []
    for name in LIBRARIES:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} not installed")
    return (
        f"{cpu}, {os.cpu_count()} cores, {memory}{platform.system()}; "
        f"Python {platform.python_version()}, {', '.join(versions)}"
    )


@dataclass(frozen=True)
class Result:
    name: str
    ours: Stats
    raw: Stats
    note: str

    @property
    def ratio(self) -> float:
        return self.ours.median / self.raw.median


def seconds(value: float) -> str:
    if value < 0.01:
        return f"{value * 1000:.1f} ms"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def table(results: list[Result]) -> list[str]:
    """A Markdown table of results, ours beside the raw library's."""
    lines = [
        "| figure | ours: median (min–max) | raw library: median (min–max) | ours / raw | note |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        ours = f"{seconds(r.ours.median)} ({seconds(r.ours.low)}–{seconds(r.ours.high)})"
        raw = f"{seconds(r.raw.median)} ({seconds(r.raw.low)}–{seconds(r.raw.high)})"
        lines.append(f"| {r.name} | {ours} | {raw} | {r.ratio:.2f}× | {r.note} |")
    return lines

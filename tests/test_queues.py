"""Queues by kind of work: clicks never wait behind bulk embedding, and the bulk queue takes
turns between apps. With a real Redis and, where it matters, real worker processes."""

import itertools
import json
import time
from contextlib import ExitStack
from pathlib import Path

import pytest
import redis

from portal import embedding, queue, reaper, training
from portal.models import App, Embedding, EmbeddingChunk, Input, ModelVersion, text_hash
from portal.tasks import (
    embed_background,
    embed_chunk,
    evaluate_model_version,
    import_csv,
    predict_csv,
    snapshot_version,
    train_model_version,
)
from tests.workers import wait_for, worker_process

pytestmark = pytest.mark.django_db(transaction=True)

ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
SECONDS = 180  # the bound on every wait


def add_inputs(app: App, count: int) -> list[int]:
    """`count` new distinct texts in `app`; their IDs."""
    texts = [f"{app.slug} text {i}: about " + "things " * (i % 7) for i in range(count)]
    created = Input.objects.bulk_create(
        Input(app=app, text=t, text_hash=text_hash(t)) for t in texts
    )
    return [item.pk for item in created]


def queued_tasks(broker: str, name: str) -> list[str]:
    messages = redis.Redis.from_url(broker).lrange(name, 0, -1)
    return [json.loads(message)["headers"]["task"] for message in messages]


def test_each_kind_of_job_goes_to_its_queue(broker):
    redis.Redis.from_url(broker).flushdb()
    interactive = [snapshot_version, import_csv, train_model_version, evaluate_model_version]
    for task in [*interactive, predict_csv, embed_chunk, embed_background]:
        assert queue.send(task, ("0",)) is None
    assert sorted(queued_tasks(broker, "interactive")) == sorted(
        task.name for task in [*interactive, predict_csv]
    )
    assert sorted(queued_tasks(broker, "bulk")) == sorted([embed_chunk.name, embed_background.name])


def test_an_upload_queues_a_few_chunks_and_keeps_the_rest_waiting(broker, app, settings):
    redis.Redis.from_url(broker).flushdb()
    settings.PORTAL_EMBED_CHUNKS_PER_APP = 2
    embedding.add_chunks(app, add_inputs(app, 5 * embedding.BATCH + 1))
    states = list(EmbeddingChunk.objects.order_by("pk").values_list("state", flat=True))
    assert states == ["QUEUED"] * 2 + ["WAITING"] * 4
    assert queued_tasks(broker, "bulk") == [embed_chunk.name] * 2


def test_a_chunk_is_embedded_once_however_often_it_is_delivered(broker, app, embedder):
    ids = add_inputs(app, 3)
    embedding.add_chunks(app, ids)
    chunk = EmbeddingChunk.objects.get()
    embedding.embed_chunk(chunk.pk)
    assert Embedding.objects.count() == 3
    assert not EmbeddingChunk.objects.exists()
    Embedding.objects.all().delete()
    embedding.embed_chunk(chunk.pk)  # a second delivery of the same message
    assert not Embedding.objects.exists()


def test_healthz_reports_each_queue_length_and_oldest_job(client, broker, app, settings):
    redis.Redis.from_url(broker).flushdb()
    settings.PORTAL_EMBED_CHUNKS_PER_APP = 1
    embedding.add_chunks(app, add_inputs(app, 3 * embedding.BATCH))
    queue.send(train_model_version, (0,))
    time.sleep(1.2)
    queues = client.get("/healthz").json()["queues"]
    assert queues["interactive"]["length"] == 1
    assert queues["interactive"]["oldest_seconds"] >= 1
    bulk = queues["bulk"]
    assert bulk["length"] == 1 and bulk["oldest_seconds"] >= 1
    assert bulk["waiting_chunks"]["count"] == 2 and bulk["waiting_chunks"]["oldest_seconds"] >= 1
    redis.Redis.from_url(broker).flushdb()
    empty = client.get("/healthz").json()["queues"]["interactive"]
    assert empty == {"length": 0, "oldest_seconds": None}


def test_the_reaper_queues_again_chunks_whose_message_was_lost(broker, app, settings):
    settings.PORTAL_EMBED_CHUNKS_PER_APP = 1
    embedding.add_chunks(app, add_inputs(app, 2 * embedding.BATCH))
    redis.Redis.from_url(broker).flushdb()  # Redis restarted without its data
    reaper.reap()
    assert queued_tasks(broker, "bulk") == []  # queued too recently to be lost
    settings.PORTAL_REAPER_DEADLINE = 0
    reaper.reap()
    assert queued_tasks(broker, "bulk") == [embed_chunk.name]
    assert list(EmbeddingChunk.objects.order_by("pk").values_list("state", flat=True)) == [
        "QUEUED",
        "WAITING",
    ]


def ready(log: Path) -> bool:
    return "ready." in log.read_text()


def test_a_training_runs_while_another_apps_upload_waits_in_the_bulk_queue(
    broker, tmp_path, spam_model, bob
):
    """One worker per queue, as `make run` starts them: a click in one app is served at
    once while a large upload to another is embedded."""
    spam_model.params["train_params"]["enrich_dataset"] = "Disabled"
    spam_model.save()
    big = App.objects.create(owner=bob, slug="big")
    ids = add_inputs(big, 8 * embedding.BATCH)
    logs = {name: tmp_path / f"{name}.log" for name in ("bulk", "interactive")}
    with ExitStack() as stack:
        for name, log in logs.items():
            stack.enter_context(
                worker_process(broker, log, queues=name, env=ONE_THREAD, flush=name == "bulk")
            )
        assert wait_for(lambda: all(ready(log) for log in logs.values()), SECONDS)
        embedding.add_chunks(big, ids)
        assert wait_for(lambda: Embedding.objects.exists(), SECONDS), logs["bulk"].read_text()
        version = training.start_training(spam_model)

        def trained() -> bool:
            version.refresh_from_db()
            return version.is_finished

        assert wait_for(trained, SECONDS), logs["interactive"].read_text()[-3000:]
        waiting = EmbeddingChunk.objects.filter(app=big).count()
        assert wait_for(lambda: not EmbeddingChunk.objects.exists(), SECONDS)
    assert version.status == ModelVersion.Status.TRAINED, version.error
    # The training ended while most of the upload was still to be embedded.
    assert waiting >= 4, waiting


def test_embedding_takes_turns_between_apps(broker, tmp_path, alice, bob, settings):
    """A large upload, then another app's smaller one: the bulk worker alternates between
    them two chunks at a time, where one queue would embed the large one first."""
    settings.PORTAL_EMBED_CHUNKS_PER_APP = 2
    large = App.objects.create(owner=alice, slug="large")
    small = App.objects.create(owner=bob, slug="small")
    redis.Redis.from_url(broker).flushdb()
    embedding.add_chunks(large, add_inputs(large, 6 * embedding.BATCH))
    embedding.add_chunks(small, add_inputs(small, 3 * embedding.BATCH))
    log = tmp_path / "bulk.log"
    with worker_process(broker, log, queues="bulk", env=ONE_THREAD, flush=False):
        assert wait_for(lambda: not EmbeddingChunk.objects.exists(), SECONDS), log.read_text()
    # The order in which texts were embedded is the order of the cache's rows.
    app_of = dict(Input.objects.values_list("text_hash", "app__slug"))
    order = [
        app_of[h] for h in Embedding.objects.order_by("pk").values_list("text_hash", flat=True)
    ]
    runs = [(slug, len(list(run)) // embedding.BATCH) for slug, run in itertools.groupby(order)]
    assert runs == [("large", 2), ("small", 2), ("large", 2), ("small", 1), ("large", 2)]

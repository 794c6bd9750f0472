"""One upload embedded by two real worker processes at once (scaling out).

Each worker is a separate `celery worker` process with one child, started with one
OpenMP/MKL/OpenBLAS thread, on the test database and the test Redis, logging to its own
file: which worker ran which embedding task is read from those logs, as an operator would.
"""

import re
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from classifier import embedders
from portal.embedding import BATCH, embedded_count
from portal.models import App, Dataset, Embedding, Input
from tests.workers import wait_for, worker_process

pytestmark = pytest.mark.django_db(transaction=True)

TEXTS = [
    f"note {i}: the {('invoice', 'meeting', 'prize', 'ticket')[i % 4]} for room {i % 13}"
    + " is due soon" * (i % 5)
    for i in range(1280)
]
CHUNKS = -(-len(TEXTS) // BATCH)  # embedding tasks queued by the upload
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
SECONDS = 180  # the bound on every wait
# Vectors from a worker against the same texts encoded here in one call. Batches are
# padded differently and the thread counts differ, so the floats may differ in their last
# bits (2e-7 at most, measured); components of unit vectors agreeing to 1e-6 are the same
# embedding.
TOLERANCE = 1e-6
SUCCEEDED = re.compile(r"portal\.tasks\.embed_chunk\[([0-9a-f-]+)\] succeeded")


@pytest.fixture
def app(alice) -> App:
    app = App.objects.create(owner=alice, slug="notes")
    Dataset.objects.create(app=app, slug="all")
    return app


@pytest.fixture
def two_workers(broker, tmp_path) -> list[Path]:
    """Two worker processes, ready to take jobs; their log files."""
    logs = [tmp_path / "worker-1.log", tmp_path / "worker-2.log"]
    with ExitStack() as stack:
        for log in logs:
            stack.enter_context(worker_process(broker, log, env=ONE_THREAD))
        # Both must be consuming before the upload queues its tasks, or the first one up
        # could take them all.
        assert wait_for(lambda: all("ready." in log.read_text() for log in logs), SECONDS), [
            log.read_text()[-2000:] for log in logs
        ]
        yield logs


def embedded_tasks(log: Path) -> set[str]:
    """IDs of the embedding tasks this worker finished, from its log."""
    return set(SUCCEEDED.findall(log.read_text()))


def test_two_workers_share_one_upload_and_agree_with_one_encode(
    two_workers, alice_client, app, embedder
):
    content = "input\n" + "".join(f"{text}\n" for text in TEXTS)
    response = alice_client.post(
        "/apps/notes/inputs/upload/",
        {
            "mode": "csv",
            "file": SimpleUploadedFile("notes.csv", content.encode(), content_type="text/csv"),
            "datasets": ["all"],
        },
    )
    assert response.status_code == 302, response.content.decode()[-2000:]
    assert Input.objects.filter(app=app).count() == len(TEXTS)

    def all_embedded() -> bool:
        return embedded_count(app) == (len(TEXTS), len(TEXTS))

    assert wait_for(all_embedded, SECONDS), [log.read_text()[-2000:] for log in two_workers]
    assert wait_for(lambda: sum(len(embedded_tasks(log)) for log in two_workers) == CHUNKS, SECONDS)
    first, second = (embedded_tasks(log) for log in two_workers)
    assert first and second, "each worker embeds part of the upload"
    assert not first & second, "no chunk is embedded twice"

    stored = dict(
        Embedding.objects.filter(
            base_model=embedders.DEFAULT_MODEL,
            text_hash__in=Input.objects.filter(app=app).values("text_hash"),
        ).values_list("text_hash", "vector")
    )
    hashes = dict(Input.objects.filter(app=app).values_list("text", "text_hash"))
    workers = np.vstack([np.frombuffer(bytes(stored[hashes[t]]), dtype="<f4") for t in TEXTS])
    here = embedder.encode(TEXTS)
    assert workers.shape == here.shape == (len(TEXTS), embedder.dimensions)
    np.testing.assert_allclose(workers, here, rtol=0, atol=TOLERANCE)

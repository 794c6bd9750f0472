"""The embedding cache: a text is embedded once per base model, ever.

Inputs are embedded in the background when they arrive (`schedule`), one chunk of BATCH
inputs per job in the bulk queue, taking turns between apps; training and evaluation call
`vectors` and embed only what is still missing.
"""

import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from classifier import embedders, enrich
from portal import queue
from portal.models import App, Embedding, EmbeddingChunk, Input, text_hash

log = logging.getLogger(__name__)

# Texts per encode call and per cache write; IDs per Celery task when inputs arrive.
BATCH = 256
LOOKUP_BATCH = 900  # SQLite allows 999 parameters in a statement


def cached(base_model: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
    found: dict[str, np.ndarray] = {}
    unique = list(dict.fromkeys(hashes))
    for start in range(0, len(unique), LOOKUP_BATCH):
        for digest, vector in _stored(base_model, unique[start : start + LOOKUP_BATCH]):
            found[digest] = np.frombuffer(bytes(vector), dtype="<f4")
    return found


def cached_hashes(base_model: str, hashes: Sequence[str]) -> set[str]:
    """Those of `hashes` whose embedding is cached (without reading the vectors)."""
    unique = list(dict.fromkeys(hashes))
    found: set[str] = set()
    for start in range(0, len(unique), LOOKUP_BATCH):
        batch = unique[start : start + LOOKUP_BATCH]
        found.update(_stored(base_model, batch).values_list("text_hash", flat=True))
    return found


def vectors(
    base_model: str,
    texts: Sequence[str],
    hashes: Sequence[str],
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Embeddings of `texts` (rows in order), from the cache or embedded and cached now.

    `progress(done, total)` is called after each batch of newly embedded texts. The
    vectors go straight into one preallocated matrix: however many texts there are, the
    memory needed is that matrix plus one batch.
    """
    if not hashes:
        return np.zeros((0, 0), dtype=np.float32)
    row_of: dict[str, int] = {}  # each distinct text's row in `matrix`
    first_texts: list[str] = []
    for digest, text in zip(hashes, texts, strict=True):
        if digest not in row_of:
            row_of[digest] = len(row_of)
            first_texts.append(text)
    matrix: np.ndarray | None = None
    found = np.zeros(len(row_of), dtype=bool)

    def put(rows: Sequence[int], block: np.ndarray) -> None:
        nonlocal matrix
        if matrix is None:
            matrix = np.empty((len(row_of), block.shape[1]), dtype=np.float32)
        matrix[rows] = block
        found[rows] = True

    unique = list(row_of)
    for start in range(0, len(unique), LOOKUP_BATCH):
        pairs = list(_stored(base_model, unique[start : start + LOOKUP_BATCH]))
        if pairs:
            block = np.vstack([np.frombuffer(bytes(vector), dtype="<f4") for _, vector in pairs])
            put([row_of[digest] for digest, _ in pairs], block)
    missing = np.flatnonzero(~found)
    if missing.size:
        started = time.perf_counter()
        embedder = embedders.get_embedder(base_model)
        for start in range(0, missing.size, BATCH):
            rows = missing[start : start + BATCH]
            encoded = embedder.encode([first_texts[i] for i in rows])
            store(base_model, [unique[i] for i in rows], encoded)
            put(rows, encoded)
            if progress:
                progress(start + rows.size, missing.size)
        seconds = time.perf_counter() - started
        log.info(
            "embedded %d new texts with %s in %.2f s (%.0f texts/s); %d were cached",
            missing.size,
            base_model,
            seconds,
            missing.size / max(seconds, 1e-9),
            len(unique) - missing.size,
        )
    assert matrix is not None
    if len(unique) == len(hashes):
        return matrix  # no repeated text: rows already in order, no copy
    return matrix[[row_of[h] for h in hashes]]


def _stored(base_model: str, hashes: Sequence[str]) -> QuerySet:
    """(text hash, vector bytes) of those of `hashes` that are cached."""
    return Embedding.objects.filter(base_model=base_model, text_hash__in=hashes).values_list(
        "text_hash", "vector"
    )


def store(base_model: str, hashes: Sequence[str], encoded: np.ndarray) -> None:
    Embedding.objects.bulk_create(
        [
            Embedding(base_model=base_model, text_hash=h, vector=row.astype("<f4").tobytes())
            for h, row in zip(hashes, encoded, strict=True)
        ],
        ignore_conflicts=True,  # another worker embedded the same text meanwhile
        batch_size=LOOKUP_BATCH // 4,
    )


def embed_inputs(input_ids: Sequence[int]) -> None:
    """Embed these inputs with their app's base model (the background job's work)."""
    rows = Input.objects.filter(pk__in=input_ids).values_list(
        "app__base_model", "text", "text_hash"
    )
    by_model: dict[str, list[tuple[str, str]]] = {}
    for base_model, text, digest in rows:
        by_model.setdefault(base_model, []).append((text, digest))
    for base_model, items in by_model.items():
        vectors(base_model, [t for t, _ in items], [h for _, h in items])


def background_vectors(base_model: str, progress: Callable[[int, int], None] | None = None):
    """The Enrich corpus embedded with `base_model` (cached like any text)."""
    texts = enrich.background_texts()
    return vectors(base_model, texts, [text_hash(t) for t in texts], progress=progress)


def schedule(app: App, input_ids: Sequence[int]) -> None:
    """Embed new inputs in the background, and the Enrich corpus (a no-op once cached),
    so that Train Model finds everything ready.

    Embedding ahead of time only saves time later: if the queue is down, training
    embeds what is missing, so a failure here is only logged.
    """
    from portal.tasks import embed_background

    if input_ids:
        add_chunks(app, input_ids)
        queue.enqueue_on_commit_if_possible(embed_background, [(app.base_model,)])


def add_chunks(app: App, input_ids: Sequence[int]) -> None:
    """Store the inputs' embedding as chunks of BATCH; after commit, queue the first ones."""
    ids = list(input_ids)
    EmbeddingChunk.objects.bulk_create(
        EmbeddingChunk(app=app, input_ids=ids[start : start + BATCH])
        for start in range(0, len(ids), BATCH)
    )
    transaction.on_commit(lambda: dispatch(app.pk))


def dispatch(app_id: int) -> None:
    """Queue the app's next waiting chunks, so that at most PORTAL_EMBED_CHUNKS_PER_APP
    of them are queued or running.

    Each finished chunk queues the next one of its app behind what other apps queued
    meanwhile: the bulk queue takes turns between apps.
    """
    from portal.tasks import embed_chunk

    chunks = EmbeddingChunk.objects.filter(app_id=app_id)
    room = (
        settings.PORTAL_EMBED_CHUNKS_PER_APP
        - chunks.exclude(state=EmbeddingChunk.State.WAITING).count()
    )
    if room <= 0:
        return
    waiting = chunks.filter(state=EmbeddingChunk.State.WAITING).order_by("pk")
    for chunk_id in waiting.values_list("pk", flat=True)[:room]:
        if not _move(chunk_id, EmbeddingChunk.State.WAITING, EmbeddingChunk.State.QUEUED):
            continue  # another process queued it meanwhile
        error = queue.send(embed_chunk, (chunk_id,))
        if error is not None:
            _move(chunk_id, EmbeddingChunk.State.QUEUED, EmbeddingChunk.State.WAITING)
            log.warning("could not queue embedding chunk %d: %s", chunk_id, error)
            return


def _move(chunk_id: int, state: str, to: str) -> bool:
    """Move the chunk from `state` to `to`; False when it was not in `state`."""
    moved = EmbeddingChunk.objects.filter(pk=chunk_id, state=state)
    return bool(moved.update(state=to, changed=timezone.now()))


def embed_chunk(chunk_id: int) -> None:
    """Embed a queued chunk, unless another delivery of its message already has."""
    if not _move(chunk_id, EmbeddingChunk.State.QUEUED, EmbeddingChunk.State.RUNNING):
        return
    chunk = EmbeddingChunk.objects.filter(pk=chunk_id).first()
    if chunk is None:
        return  # its app was deleted meanwhile
    try:
        embed_inputs(chunk.input_ids)
    finally:
        finish_chunk(chunk_id)


def release_chunk(chunk_id: int) -> None:
    """The worker that was embedding the chunk died: it may be taken again."""
    _move(chunk_id, EmbeddingChunk.State.RUNNING, EmbeddingChunk.State.QUEUED)


def finish_chunk(chunk_id: int) -> None:
    """The chunk is done (or given up): forget it and give its app's next one a turn."""
    chunk = EmbeddingChunk.objects.filter(pk=chunk_id)
    app_id = chunk.values_list("app_id", flat=True).first()
    chunk.delete()
    if app_id is not None:
        dispatch(app_id)


def redispatch(cutoff: datetime) -> None:
    """Chunks queued or running since before `cutoff` lost their message (Redis restarted
    without its data, say): they wait again. Then every app with waiting chunks gets its
    turn, including those whose queuing failed while the broker was down."""
    EmbeddingChunk.objects.exclude(state=EmbeddingChunk.State.WAITING).filter(
        changed__lt=cutoff
    ).update(state=EmbeddingChunk.State.WAITING, changed=timezone.now())
    waiting = EmbeddingChunk.objects.filter(state=EmbeddingChunk.State.WAITING)
    for app_id in waiting.values_list("app_id", flat=True).distinct():
        dispatch(app_id)


def embedded_count(app: App) -> tuple[int, int]:
    """(inputs of the app embedded with its base model, all inputs of the app)."""
    inputs = Input.objects.filter(app=app)
    done = Embedding.objects.filter(base_model=app.base_model, text_hash=OuterRef("text_hash"))
    return inputs.filter(Exists(done)).count(), inputs.count()

"""Dataset versions: create one, take its snapshot in the background, export its rows."""

import hashlib
import itertools
import logging
import operator
from collections import defaultdict
from collections.abc import Iterator

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from portal.csv_io import ExportRow
from portal.models import Annotation, Dataset, DatasetVersion, DatasetVersionRow
from portal.queue import enqueue_on_commit
from portal.tasks import snapshot_version

log = logging.getLogger(__name__)

BATCH_SIZE = 2000
# Two people clicking New version at once both read the same max(number); the loser retries.
NUMBER_ATTEMPTS = 3
QUEUE_UNAVAILABLE = "the job queue was unavailable"

Status = DatasetVersion.Status


def create_version(dataset: Dataset) -> DatasetVersion:
    """Add a PENDING version numbered after the last one; its snapshot runs after commit.

    Raises QueueUnavailable (with the version marked FAILURE) if the broker refuses the job.
    """
    for attempt in range(1, NUMBER_ATTEMPTS + 1):
        try:
            with transaction.atomic():
                last = dataset.versions.aggregate(last=Max("number"))["last"] or 0
                version = DatasetVersion.objects.create(dataset=dataset, number=last + 1)
                _enqueue_snapshot(version)
            return version
        except IntegrityError:
            if attempt == NUMBER_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


def _enqueue_snapshot(version: DatasetVersion) -> None:
    def on_failure() -> None:
        mark_failed(version.pk, QUEUE_UNAVAILABLE)
        version.status, version.error = Status.FAILURE, QUEUE_UNAVAILABLE

    enqueue_on_commit(snapshot_version, version.pk, on_failure=on_failure)


def mark_failed(version_id: int, reason: str) -> None:
    # Only an unfinished version can fail: a READY snapshot is never overwritten.
    DatasetVersion.objects.filter(
        pk=version_id, status__in=[Status.PENDING, Status.IN_PROGRESS]
    ).update(status=Status.FAILURE, error=reason)


def snapshot(version_id: int) -> None:
    """Copy the dataset's inputs and labels into the version's rows, once.

    The claim is a conditional update, so a redelivered task finds the version no longer
    PENDING and does nothing. The rows and the READY status are written in one
    transaction: a failure leaves no rows behind, only a FAILURE status with the reason.
    """
    claimed = DatasetVersion.objects.filter(pk=version_id, status=Status.PENDING).update(
        status=Status.IN_PROGRESS, started=timezone.now()
    )
    if not claimed:
        return
    try:
        with transaction.atomic():
            _write_rows(version_id)
    except Exception as exc:
        log.exception("snapshot of dataset version %s failed", version_id)
        mark_failed(version_id, f"The snapshot failed: {exc.__class__.__name__}: {exc}")


def _write_rows(version_id: int) -> None:
    version = DatasetVersion.objects.select_related("dataset").get(pk=version_id)
    labels = _labels_by_input(version.dataset)
    labeled = next(labels, None)
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"positive": 0, "negative": 0})
    hash_lines: list[str] = []
    batch: list[DatasetVersionRow] = []
    inputs = (
        version.dataset.inputs.order_by("pk")
        .values_list("pk", "external_id", "text", "text_hash")
        .iterator(chunk_size=BATCH_SIZE)
    )
    for input_id, external_id, text, text_hash in inputs:
        # Both streams are in input order: walk them side by side (a merge join).
        while labeled is not None and labeled[0] < input_id:
            labeled = next(labels, None)
        positive, negative = [], []
        if labeled is not None and labeled[0] == input_id:
            positive, negative = sorted(labeled[1]), sorted(labeled[2])
        for slug in positive:
            counts[slug]["positive"] += 1
        for slug in negative:
            counts[slug]["negative"] += 1
        hash_lines.append(_hash_line(text_hash, positive, negative))
        batch.append(
            DatasetVersionRow(
                version=version,
                input_id=input_id,
                external_id=external_id,
                text=text,
                text_hash=text_hash,
                positive=positive,
                negative=negative,
            )
        )
        if len(batch) >= BATCH_SIZE:
            DatasetVersionRow.objects.bulk_create(batch)
            batch = []
    DatasetVersionRow.objects.bulk_create(batch)

    finished = DatasetVersion.objects.filter(pk=version_id, status=Status.IN_PROGRESS).update(
        status=Status.READY,
        input_count=len(hash_lines),
        concept_counts={slug: counts[slug] for slug in sorted(counts)},
        content_hash=_digest(hash_lines),
        error="",
    )
    if not finished:
        raise RuntimeError("the version was no longer in progress")


def _hash_line(text_hash: str, positive: list[str], negative: list[str]) -> str:
    # Concept IDs never hold "," or tabs, so this line encodes the row unambiguously.
    return f"{text_hash}\t{','.join(positive)}\t{','.join(negative)}\n"


def _digest(lines: list[str]) -> str:
    # Sorted, so that the same content gives the same hash whatever the input order.
    digest = hashlib.sha256()
    for line in sorted(lines):
        digest.update(line.encode())
    return digest.hexdigest()


def rows_hash(version: DatasetVersion) -> str:
    """The content hash of the version's rows as they are now: equal to its stored
    `content_hash` as long as the rows are the ones its snapshot wrote."""
    rows = version.rows.values_list("text_hash", "positive", "negative").iterator(
        chunk_size=BATCH_SIZE
    )
    return _digest([_hash_line(text_hash, pos, neg) for text_hash, pos, neg in rows])


def _labels_by_input(dataset: Dataset) -> Iterator[tuple[int, list[str], list[str]]]:
    """(input pk, positive concept IDs, negative concept IDs) of each labeled input, in
    input order, streamed from one query: a 100,000-input dataset's labels are never all
    in memory."""
    annotations = (
        Annotation.objects.filter(input__datasets=dataset)
        .order_by("input_id")
        .values_list("input_id", "concept__slug", "value")
        .iterator(chunk_size=BATCH_SIZE)
    )
    for input_id, group in itertools.groupby(annotations, key=operator.itemgetter(0)):
        positive: list[str] = []
        negative: list[str] = []
        for _, slug, value in group:
            (positive if value == Annotation.POSITIVE else negative).append(slug)
        yield input_id, positive, negative


def export_rows(version: DatasetVersion) -> Iterator[ExportRow]:
    rows = (
        version.rows.order_by("pk")
        .values_list("external_id", "text", "positive", "negative")
        .iterator(chunk_size=BATCH_SIZE)
    )
    for external_id, text, positive, negative in rows:
        # Rows keep no metadata: a version is about texts and labels.
        yield ExportRow(external_id, text, tuple(positive), tuple(negative), {})


def export_filename(version: DatasetVersion, extension: str) -> str:
    dataset = version.dataset
    return f"{dataset.app.slug}_{dataset.slug}_v{version.number}.{extension}"

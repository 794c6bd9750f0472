"""Bring new inputs into an app: typed texts and CSV files, all or nothing.

`add_inputs` is the one place where inputs are created; the embedding job hands off
from here (inputs are embedded in the background once they exist).
"""

import logging
from dataclasses import dataclass
from datetime import datetime

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from portal import embedding
from portal.csv_io import CsvImportError, ParsedRow, parse_csv
from portal.models import Annotation, App, Concept, Dataset, ImportJob, Input, text_hash
from portal.queue import enqueue_on_commit

log = logging.getLogger(__name__)

BATCH = 2000
MAX_ATTEMPTS = 3
STOPPED = (
    f"the import was interrupted {MAX_ATTEMPTS} times (its worker process stopped) and was "
    "given up; nothing was imported; upload the file again"
)
TIMED_OUT = "the import took longer than the time limit and was stopped; nothing was imported"


@dataclass(frozen=True)
class ImportResult:
    created: int
    skipped: int


def rows_from_text(text: str) -> list[ParsedRow]:
    """One input per non-blank line of a text box."""
    return [
        ParsedRow(
            row=number,
            text=line.strip(),
            external_id="",
            concepts=(),
            negative_concepts=(),
            metadata={},
        )
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip()
    ]


def _concepts_by_id(app: App, rows: list[ParsedRow], extra: list[Concept]) -> dict[str, Concept]:
    """The app's concepts, creating those the rows name that don't exist yet."""
    wanted = {c for row in rows for c in (*row.concepts, *row.negative_concepts)}
    known = {c.slug: c for c in Concept.objects.filter(app=app)}
    known.update((c.slug, c) for c in extra)
    new = [Concept(app=app, slug=slug, name=slug) for slug in sorted(wanted - known.keys())]
    for concept in Concept.objects.bulk_create(new):
        known[concept.slug] = concept
    return known


def _new_rows(app: App, rows: list[ParsedRow], datasets: list[Dataset]) -> list[ParsedRow]:
    """Leave out exact duplicates: a known input ID, or a text already in the target.

    The target is the chosen datasets, or the whole app when none is chosen.
    """
    seen_ids = set(
        Input.objects.filter(app=app).exclude(external_id="").values_list("external_id", flat=True)
    )
    texts = Input.objects.filter(app=app)
    if datasets:
        texts = texts.filter(datasets__in=datasets)
    seen_hashes = set(texts.values_list("text_hash", flat=True))
    fresh = []
    for row in rows:
        digest = text_hash(row.text)
        if (row.external_id and row.external_id in seen_ids) or digest in seen_hashes:
            continue
        seen_ids.add(row.external_id)
        seen_hashes.add(digest)
        fresh.append(row)
    return fresh


def add_inputs(
    app: App,
    rows: list[ParsedRow],
    *,
    datasets: list[Dataset],
    concepts: list[Concept],
    author,
) -> ImportResult:
    """Create inputs for `rows`, labeled with their own concepts plus `concepts`.

    Runs in one transaction: either every new input is saved with its labels and
    datasets, or none is.
    """
    with transaction.atomic():
        by_id = _concepts_by_id(app, rows, concepts)
        fresh = _new_rows(app, rows, datasets)
        now = timezone.now()
        chosen = {c.slug for c in concepts}
        created: list[int] = []
        # BATCH rows at a time: the model instances of a 100,000-row file would otherwise
        # all be in memory at once.
        for start in range(0, len(fresh), BATCH):
            chunk = fresh[start : start + BATCH]
            created += _save_chunk(app, chunk, datasets, chosen, by_id, author, now)
        embedding.schedule(app, created)
    return ImportResult(created=len(created), skipped=len(rows) - len(fresh))


def _save_chunk(
    app: App,
    rows: list[ParsedRow],
    datasets: list[Dataset],
    chosen: set[str],
    by_id: dict[str, Concept],
    author,
    now: datetime,
) -> list[int]:
    """Save these rows' inputs, labels and dataset memberships; the new inputs' IDs."""
    inputs = Input.objects.bulk_create(
        [
            Input(
                app=app,
                text=row.text,
                text_hash=text_hash(row.text),
                external_id=row.external_id,
                metadata=row.metadata,
                created=now,
            )
            for row in rows
        ]
    )
    annotations = []
    for row, item in zip(rows, inputs, strict=True):
        for slug in chosen.union(row.concepts):
            annotations.append(
                Annotation(input=item, concept=by_id[slug], value=1, author=author, created=now)
            )
        for slug in set(row.negative_concepts) - chosen:
            annotations.append(
                Annotation(input=item, concept=by_id[slug], value=0, author=author, created=now)
            )
    Annotation.objects.bulk_create(annotations, batch_size=BATCH)
    Membership = Dataset.inputs.through
    Membership.objects.bulk_create(
        [Membership(dataset=d, input=item) for d in datasets for item in inputs],
        batch_size=BATCH,
    )
    return [item.pk for item in inputs]


def start_job(job: ImportJob, redelivered: bool = False) -> bool:
    """Claim a pending job, or a running one whose worker died (a redelivered message),
    at most MAX_ATTEMPTS times; False when it is not this delivery's to run."""
    Status = ImportJob.Status
    statuses = [Status.PENDING, Status.RUNNING] if redelivered else [Status.PENDING]
    claimed = ImportJob.objects.filter(
        pk=job.pk, status__in=statuses, attempts__lt=MAX_ATTEMPTS
    ).update(status=Status.RUNNING, started=timezone.now(), attempts=F("attempts") + 1)
    if not claimed and redelivered:  # its workers died MAX_ATTEMPTS times, or it is finished
        ImportJob.objects.filter(pk=job.pk, status=Status.RUNNING).update(
            status=Status.FAILED, finished=timezone.now(), errors=[STOPPED]
        )
    return claimed == 1


def run_job(job: ImportJob) -> None:
    """Parse and save an upload; the job ends DONE or FAILED with the reasons.

    The inputs and the job's DONE status commit together: a worker stopped before the
    commit leaves nothing imported, and the next run imports the whole file.
    """
    try:
        rows = parse_csv(
            bytes(job.data),
            max_text_length=settings.PORTAL_MAX_TEXT_LENGTH,
            label_map=job.label_map,
        )
        job.rows_total = len(rows)
        ImportJob.objects.filter(pk=job.pk).update(rows_total=job.rows_total)
        with transaction.atomic():
            result = add_inputs(
                job.app,
                rows,
                datasets=list(Dataset.objects.filter(app=job.app, slug__in=job.dataset_ids)),
                concepts=list(Concept.objects.filter(app=job.app, slug__in=job.concept_ids)),
                author=job.user,
            )
            finish(
                job,
                ImportJob.Status.DONE,
                rows_done=len(rows),
                created_count=result.created,
                skipped_count=result.skipped,
            )
    except CsvImportError as exc:
        finish(job, ImportJob.Status.FAILED, errors=[str(e) for e in exc.errors])
    except SoftTimeLimitExceeded:
        finish(job, ImportJob.Status.FAILED, errors=[TIMED_OUT])
    except Exception as exc:
        log.exception("import %s failed", job.pk)
        finish(job, ImportJob.Status.FAILED, errors=[f"the import failed: {exc}"])


def finish(job: ImportJob, status: str, **fields) -> None:
    fields = {"status": status, "finished": timezone.now(), **fields}
    if status == ImportJob.Status.DONE:
        fields["data"] = b""  # the file is not needed any more; a failed one may be retried
    for name, value in fields.items():
        setattr(job, name, value)
    job.save(update_fields=list(fields))


def import_file(
    app: App,
    user: AbstractBaseUser | None,
    filename: str,
    data: bytes,
    dataset_ids: list[str],
    concept_ids: list[str] | None = None,
    label_map: dict[str, str] | None = None,
) -> ImportJob:
    """A CSV upload as a job: a small file is imported now (the job ends DONE or FAILED),
    a big one is queued for a worker (PENDING). Raises QueueUnavailable, the job FAILED,
    when it can't be queued. `label_map` renames the file's labels (see `parse_csv`)."""
    # Imported here: portal.tasks imports this module.
    from portal.tasks import import_csv

    job = ImportJob.objects.create(
        app=app,
        user=user,
        filename=filename[:255],
        data=data,
        dataset_ids=dataset_ids,
        concept_ids=concept_ids or [],
        label_map=label_map or {},
    )
    if data.count(b"\n") < settings.PORTAL_BACKGROUND_IMPORT_ROWS:
        start_job(job)
        run_job(job)
    else:
        enqueue_on_commit(import_csv, job.pk, on_failure=lambda: fail_unqueued(job))
    return job


def fail_unqueued(job: ImportJob) -> None:
    finish(job, ImportJob.Status.FAILED, errors=["the job queue was unavailable; try again"])

"""Batch prediction: a CSV in (the importer's formats), a CSV of probabilities out.

The output keeps every column of the file as it was (a label column too, to compare
with), then the most probable concept and one probability column per concept."""

import csv
import io
import logging

from django.conf import settings
from django.utils import timezone

from portal import prediction
from portal.csv_io import CsvImportError, cells_by_row, parse_csv
from portal.models import PredictionJob

log = logging.getLogger(__name__)

CHUNK = 128
STOPPED = "the prediction stopped without finishing (its worker was stopped); try again"


def claim(job_id: int) -> bool:
    return (
        PredictionJob.objects.filter(pk=job_id, status=PredictionJob.Status.PENDING).update(
            status=PredictionJob.Status.RUNNING, started=timezone.now()
        )
        == 1
    )


def run(job_id: int, redelivered: bool = False) -> None:
    """Predict every row of the job's file, reporting progress, and store the result CSV."""
    if not claim(job_id):
        if redelivered:  # its worker died; the result is stored only when complete
            PredictionJob.objects.filter(pk=job_id, status=PredictionJob.Status.RUNNING).update(
                status=PredictionJob.Status.FAILED, finished=timezone.now(), errors=[STOPPED]
            )
        return  # another delivery has it or had it
    job = PredictionJob.objects.select_related("model_version__model").get(pk=job_id)
    version = job.model_version
    try:
        data = bytes(job.data)
        rows = parse_csv(data, max_text_length=settings.PORTAL_MAX_TEXT_LENGTH)
        header, cells = cells_by_row(data)
        PredictionJob.objects.filter(pk=job_id).update(rows_total=len(rows))
        concepts = list(version.concepts)
        out = io.StringIO()
        writer = csv.writer(out)
        ours = ["top_concept", *concepts]
        taken = {name.strip().lower() for name in header}
        writer.writerow([*header, *(f"{n} (predicted)" if n.lower() in taken else n for n in ours)])
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start : start + CHUNK]
            result = prediction.predict(
                version.model,
                [row.text for row in chunk],
                version.number,
                # Every concept, whatever the model's inference settings: this is a report.
                {
                    "min_value": 0.0,
                    "max_concepts": len(concepts),
                    "select_concepts": [],
                    "concept_thresholds": {},
                },
            )
            for row, output in zip(chunk, result.outputs, strict=True):
                values = {c.id: c.value for c in output}
                top = output[0].id if output else ""
                writer.writerow([*cells[row.row], top, *(f"{values[c]:.6f}" for c in concepts)])
            PredictionJob.objects.filter(pk=job_id).update(rows_done=start + len(chunk))
        finish(job_id, PredictionJob.Status.DONE, result=out.getvalue().encode(), data=b"")
    except CsvImportError as exc:
        finish(job_id, PredictionJob.Status.FAILED, errors=[str(e) for e in exc.errors])
    except prediction.PredictionError as exc:
        finish(job_id, PredictionJob.Status.FAILED, errors=[str(exc)])
    except Exception as exc:
        log.exception("batch prediction %s failed", job_id)
        finish(job_id, PredictionJob.Status.FAILED, errors=[f"the prediction failed: {exc}"])


def finish(job_id: int, status: str, **fields) -> None:
    PredictionJob.objects.filter(pk=job_id).update(status=status, finished=timezone.now(), **fields)


def fail_unqueued(job_id: int) -> None:
    finish(job_id, PredictionJob.Status.FAILED, errors=["the job queue was unavailable; try again"])

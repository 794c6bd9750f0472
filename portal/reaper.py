"""Fail the jobs whose worker vanished, so that no job waits or runs forever.

A job still queued or running after the deadline cannot be alive any more: the hard time
limit has killed any task by then, and Redis has redelivered any message it was going
to redeliver (the deadline is longer than the visibility timeout). Training writes a
heartbeat, so a training run is known to be dead as soon as its heartbeat stops.
Embedding chunks whose message was lost are queued again.
"""

from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from portal import embedding
from portal.models import DatasetVersion, Evaluation, ImportJob, ModelVersion, PredictionJob

LOST = "the job stopped without finishing (its worker was stopped or lost); try again"


def reap() -> int:
    """Mark stale jobs failed; returns how many."""
    cutoff = timezone.now() - timedelta(seconds=settings.PORTAL_REAPER_DEADLINE)
    imports = ImportJob.objects.filter(
        Q(status=ImportJob.Status.PENDING, created__lt=cutoff)
        | Q(status=ImportJob.Status.RUNNING, started__lt=cutoff)
    ).update(status=ImportJob.Status.FAILED, finished=timezone.now(), errors=[LOST])
    versions = DatasetVersion.objects.filter(
        Q(status=DatasetVersion.Status.PENDING, created__lt=cutoff)
        | Q(status=DatasetVersion.Status.IN_PROGRESS, started__lt=cutoff)
    ).update(status=DatasetVersion.Status.FAILURE, error=LOST)
    silent = timezone.now() - timedelta(seconds=settings.PORTAL_HEARTBEAT_DEADLINE)
    trainings = ModelVersion.objects.filter(
        Q(status=ModelVersion.Status.QUEUED, created__lt=cutoff)
        | Q(status=ModelVersion.Status.TRAINING, heartbeat__lt=silent)
    ).update(status=ModelVersion.Status.FAILED, finished=timezone.now(), error=LOST)
    predictions = PredictionJob.objects.filter(
        Q(status=PredictionJob.Status.PENDING, created__lt=cutoff)
        | Q(status=PredictionJob.Status.RUNNING, started__lt=cutoff)
    ).update(status=PredictionJob.Status.FAILED, finished=timezone.now(), errors=[LOST])
    evaluations = Evaluation.objects.filter(
        Q(status=Evaluation.Status.QUEUED, created__lt=cutoff)
        | Q(status=Evaluation.Status.EVALUATING, started__lt=cutoff)
    ).update(status=Evaluation.Status.FAILED, finished=timezone.now(), error=LOST)
    embedding.redispatch(cutoff)
    return imports + versions + trainings + predictions + evaluations

import socket

from celery import shared_task
from django.utils import timezone

from portal import importing, reaper
from portal.models import Heartbeat, ImportJob


@shared_task
def heartbeat() -> None:
    Heartbeat.objects.update_or_create(
        name="queue", defaults={"worker": socket.gethostname(), "seen": timezone.now()}
    )


@shared_task
def snapshot_version(version_id: int) -> None:
    # Imported here: portal.versions imports this module to enqueue the task.
    from portal import versions

    versions.snapshot(version_id)


@shared_task
def import_csv(job_id: int) -> None:
    job = ImportJob.objects.select_related("app", "user").filter(pk=job_id).first()
    if job is not None and importing.start_job(job):
        importing.run_job(job)


@shared_task
def reap_stale_jobs() -> None:
    reaper.reap()

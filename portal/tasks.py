import socket

from celery import shared_task
from celery.signals import worker_process_init
from django.utils import timezone

from classifier import embedders
from portal import batch, embedding, importing, reaper
from portal.models import Heartbeat, ImportJob


@worker_process_init.connect
def load_default_model(**kwargs) -> None:
    """Load the embedding model when a worker process starts, not at its first job."""
    embedders.get_embedder(embedders.DEFAULT_MODEL)


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


@shared_task
def embed_inputs(input_ids: list[int]) -> None:
    embedding.embed_inputs(input_ids)


@shared_task
def embed_background(base_model: str) -> None:
    embedding.background_vectors(base_model)


@shared_task(bind=True, max_retries=10)
def train_model_version(self, version_id: int) -> None:
    # Imported here: portal.training imports this module to enqueue the task.
    from portal import training

    if training.train(version_id) is training.Outcome.BUSY:
        # Another worker holds it; look again once its heartbeat would have gone stale.
        raise self.retry(countdown=training.stale_seconds())


@shared_task
def predict_csv(job_id: int) -> None:
    batch.run(job_id)


@shared_task
def evaluate_model_version(evaluation_id: int) -> None:
    # Imported here: portal.evaluating imports this module to enqueue the task.
    from portal import evaluating

    evaluating.run(evaluation_id)

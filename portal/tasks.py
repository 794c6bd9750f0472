import logging
import os
import socket

from celery import Task, shared_task
from celery.signals import worker_init, worker_process_init
from django.utils import timezone
from threadpoolctl import threadpool_limits

from classifier import embedders
from portal import batch, embedding, importing, reaper
from portal.models import Heartbeat, ImportJob

log = logging.getLogger(__name__)

MAX_DELIVERIES = 3
# BLAS threads for each worker process: its share of the cores (set before the fork).
blas_threads = 1


def redelivered(task: Task) -> bool:
    """Whether Redis gave this message back: the worker running it died, or a stopping
    worker had not started it yet (its job is still queued then).

    A task always ends (the hard time limit) before the visibility timeout, so a job
    still running under a redelivered message belongs to a dead worker and may be
    taken over.
    """
    return bool((task.request.delivery_info or {}).get("redelivered"))


def delivery_allowed(task: Task) -> bool:
    """For a job without a status row: False once its message has been given back by
    MAX_DELIVERIES dead workers. A redelivered message is sent again as a retry, so that
    Celery's retry count numbers the deliveries."""
    if not redelivered(task):
        return True
    if task.request.retries + 1 >= MAX_DELIVERIES:
        log.error(
            "%s %s stopped its worker %d times; given up",
            task.name,
            task.request.id,
            MAX_DELIVERIES,
        )
        return False
    raise task.retry(countdown=0)


@worker_init.connect
def share_the_cores(sender, **kwargs) -> None:
    """Split the cores between the worker processes for scikit-learn's BLAS threads.

    Each process otherwise starts one BLAS thread per core, and threads that spin while
    the cores are busy made four trainings at once on two cores take 33 s each instead
    of 2.4 s (bench/load.py). An operator's OMP_NUM_THREADS, when set, wins.
    """
    global blas_threads
    chosen = os.environ.get("OMP_NUM_THREADS", "")
    if chosen.isdigit() and int(chosen) > 0:
        blas_threads = int(chosen)
    elif isinstance(sender.concurrency, int):
        blas_threads = max(1, (os.cpu_count() or 1) // sender.concurrency)


@worker_process_init.connect
def load_default_model(**kwargs) -> None:
    """Load the embedding model when a worker process starts, not at its first job, with
    the process's share of the cores for BLAS, torch and ONNX Runtime threads."""
    threadpool_limits(limits=blas_threads, user_api="blas")
    embedders.set_threads(blas_threads)
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


@shared_task(bind=True)
def import_csv(self, job_id: int) -> None:
    job = ImportJob.objects.select_related("app", "user").filter(pk=job_id).first()
    if job is not None and importing.start_job(job, redelivered=redelivered(self)):
        importing.run_job(job)


@shared_task
def reap_stale_jobs() -> None:
    reaper.reap()


@shared_task(bind=True, max_retries=MAX_DELIVERIES)
def embed_chunk(self, chunk_id: int) -> None:
    if redelivered(self):
        embedding.release_chunk(chunk_id)
    if delivery_allowed(self):
        embedding.embed_chunk(chunk_id)
    else:
        embedding.finish_chunk(chunk_id)


@shared_task(bind=True, max_retries=MAX_DELIVERIES)
def embed_background(self, base_model: str) -> None:
    if delivery_allowed(self):
        embedding.background_vectors(base_model)


@shared_task(bind=True, max_retries=10)
def train_model_version(self, version_id: int) -> None:
    # Imported here: portal.training imports this module to enqueue the task.
    from portal import training

    if training.train(version_id) is training.Outcome.BUSY:
        # Another worker holds it; look again once its heartbeat would have gone stale.
        raise self.retry(countdown=training.stale_seconds())


@shared_task(bind=True)
def predict_csv(self, job_id: int) -> None:
    batch.run(job_id, redelivered=redelivered(self))


@shared_task(bind=True)
def evaluate_model_version(self, evaluation_id: int) -> None:
    # Imported here: portal.evaluating imports this module to enqueue the task.
    from portal import evaluating

    evaluating.run(evaluation_id, redelivered=redelivered(self))

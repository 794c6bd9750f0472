"""A Celery entry module for the fault tests: the portal's app and tasks with faults
that a test switches on, so that the product code carries no test hooks.

Run as `celery -A tests.faultyworker worker` with PORTAL_FAULTS naming a folder:

- a text containing "CRASH" makes `embedding.vectors` end its process, every time
  (training, evaluation and embedding jobs all embed through it);
- an app whose slug contains "crash" makes an import end its process inside its
  transaction, every time;
- each crash first appends the task's name to the file "crashes";
- while the file "pause" exists, `embedding.store` (after storing a batch) and an
  import (inside its transaction, its inputs written) wait, having created the file
  "paused-<pid>" and "paused-<pid>-<task name>".

The embedding model is loaded at a job's first use instead of when a worker process
starts (so that replacing a crashed process is quick), unless PORTAL_FAULTS_PRELOAD=1.
"""

import os
import time
from pathlib import Path

import django
from celery import current_task
from celery.signals import worker_process_init

from portal.celery import app

django.setup()

from portal import embedding, tasks  # noqa: E402

__all__ = ["app"]

FAULTS = Path(os.environ["PORTAL_FAULTS"])
PAUSE_SECONDS = 120

real_vectors, real_store, real_schedule = embedding.vectors, embedding.store, embedding.schedule


def crash() -> None:
    with (FAULTS / "crashes").open("a") as log:
        log.write(f"{current_task.name}\n")
    os._exit(1)


def pause() -> None:
    if not (FAULTS / "pause").exists():
        return
    (FAULTS / f"paused-{os.getpid()}").touch()
    (FAULTS / f"paused-{os.getpid()}-{current_task.name}").touch()
    deadline = time.monotonic() + PAUSE_SECONDS
    while (FAULTS / "pause").exists() and time.monotonic() < deadline:
        time.sleep(0.1)


def vectors(base_model, texts, hashes, progress=None):
    if any("CRASH" in text for text in texts):
        crash()
    return real_vectors(base_model, texts, hashes, progress)


def store(base_model, hashes, encoded) -> None:
    real_store(base_model, hashes, encoded)
    pause()


def schedule(app, input_ids) -> None:
    if "crash" in app.slug:
        crash()
    pause()
    real_schedule(app, input_ids)


embedding.vectors, embedding.store, embedding.schedule = vectors, store, schedule
if os.environ.get("PORTAL_FAULTS_PRELOAD") != "1":
    worker_process_init.disconnect(tasks.load_default_model)

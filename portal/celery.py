import os
import time
import warnings

from celery import Celery
from celery.exceptions import SecurityWarning
from celery.signals import before_task_publish

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Each worker process loads the embedding model as it starts (portal.tasks). Celery kills
# a new process that hasn't reported for duty within 4 s, so on a busy machine the
# processes would be killed and replaced over and over.
app.conf.worker_proc_alive_timeout = 60
if os.environ.get("PORTAL_ROOT_EXPLAINED") == "1":
    # `manage.py serve` has already said once why the worker runs as root.
    warnings.filterwarnings("ignore", category=SecurityWarning)


@before_task_publish.connect
def stamp_sent_time(headers: dict, **kwargs) -> None:
    """Record when each message was queued: /healthz reports the oldest one's age."""
    headers["sent_at"] = time.time()

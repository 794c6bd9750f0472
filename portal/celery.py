import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Each worker process loads the embedding model as it starts (portal.tasks). Celery kills
# a new process that hasn't reported for duty within 4 s, so on a busy machine the
# processes would be killed and replaced over and over.
app.conf.worker_proc_alive_timeout = 60

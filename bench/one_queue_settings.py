"""The portal's settings with the one-queue design that came before the two queues: every
job in one first-in, first-out queue, every embedding chunk of an upload queued at once."""

from portal.settings import *  # noqa: F403
from portal.settings import CELERY_TASK_DEFAULT_QUEUE, Queue

CELERY_TASK_QUEUES = [Queue(CELERY_TASK_DEFAULT_QUEUE, routing_key=CELERY_TASK_DEFAULT_QUEUE)]
CELERY_TASK_ROUTES: dict = {}
PORTAL_EMBED_CHUNKS_PER_APP = 1_000_000

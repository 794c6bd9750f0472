import socket

from celery import shared_task
from django.utils import timezone

from portal.models import Heartbeat


@shared_task
def heartbeat() -> None:
    Heartbeat.objects.update_or_create(
        name="queue", defaults={"worker": socket.gethostname(), "seen": timezone.now()}
    )

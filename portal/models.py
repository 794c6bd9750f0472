from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone

from portal.ids import validate_id

DEFAULT_BASE_MODEL = "all-MiniLM-L6-v2"


class App(models.Model):
    """A user's workspace: its concepts, inputs, datasets and models belong to it alone."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="apps")
    slug = models.CharField("App ID", max_length=64, validators=[validate_id])
    description = models.CharField(max_length=500, blank=True)
    base_model = models.CharField(max_length=200, default=DEFAULT_BASE_MODEL)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["slug"]
        constraints = [
            # Also serves the lookup every app page makes: (owner, slug).
            models.UniqueConstraint(fields=["owner", "slug"], name="app_slug_unique_per_owner"),
        ]

    def __str__(self) -> str:
        return self.slug

    def get_absolute_url(self) -> str:
        return reverse("portal:app-overview", args=[self.slug])


class Heartbeat(models.Model):
    """The last time a worker ran a queued task: proof that the queue really works."""

    name = models.CharField(max_length=100, unique=True)
    worker = models.CharField(max_length=200)
    seen = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} by {self.worker} at {self.seen:%Y-%m-%d %H:%M:%S}"

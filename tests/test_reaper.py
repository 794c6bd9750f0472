from datetime import timedelta

import pytest
from django.utils import timezone

from portal import reaper
from portal.models import App, Dataset, DatasetVersion, ImportJob

pytestmark = pytest.mark.django_db

Status = DatasetVersion.Status


@pytest.fixture
def app(alice):
    return App.objects.create(owner=alice, slug="spam-filter")


def ago(seconds: float):
    return timezone.now() - timedelta(seconds=seconds)


def test_it_fails_jobs_past_the_deadline_and_only_those(app, settings):
    settings.PORTAL_REAPER_DEADLINE = 600
    dataset = Dataset.objects.create(app=app, slug="emails")
    stuck = DatasetVersion.objects.create(
        dataset=dataset, number=1, status=Status.IN_PROGRESS, started=ago(601)
    )
    lost = DatasetVersion.objects.create(dataset=dataset, number=2, created=ago(700))
    busy = DatasetVersion.objects.create(
        dataset=dataset, number=3, status=Status.IN_PROGRESS, created=ago(900), started=ago(10)
    )
    ready = DatasetVersion.objects.create(
        dataset=dataset, number=4, status=Status.READY, started=ago(900)
    )
    running = ImportJob.objects.create(
        app=app, filename="a.csv", status=ImportJob.Status.RUNNING, started=ago(601)
    )
    fresh = ImportJob.objects.create(app=app, filename="b.csv")

    assert reaper.reap() == 3

    def status(obj):
        obj.refresh_from_db()
        return obj.status

    assert status(stuck) == status(lost) == Status.FAILURE
    assert "stopped without finishing" in DatasetVersion.objects.get(pk=stuck.pk).error
    assert status(busy) == Status.IN_PROGRESS
    assert status(ready) == Status.READY
    assert status(running) == ImportJob.Status.FAILED
    assert status(fresh) == ImportJob.Status.PENDING

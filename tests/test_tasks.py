import time

import pytest
from django.db import transaction

from portal.models import Heartbeat
from portal.tasks import heartbeat

pytestmark = pytest.mark.django_db(transaction=True)


def wait_for(condition, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_a_task_enqueued_after_commit_runs_on_a_real_worker(celery_worker):
    with transaction.atomic():
        heartbeat.delay_on_commit()
        # Nothing is sent while the transaction is open.
        time.sleep(0.5)
        assert not Heartbeat.objects.exists()
    assert wait_for(lambda: Heartbeat.objects.filter(name="queue").exists())


def test_a_rolled_back_transaction_enqueues_nothing(celery_worker):
    with pytest.raises(RuntimeError), transaction.atomic():
        heartbeat.delay_on_commit()
        raise RuntimeError("roll back")
    assert not wait_for(lambda: Heartbeat.objects.exists(), timeout=2)

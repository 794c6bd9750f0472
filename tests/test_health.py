import time

import pytest

pytestmark = pytest.mark.django_db(transaction=True)


def test_it_needs_no_sign_in_and_says_503_quickly_without_redis(client, dead_broker):
    started = time.monotonic()
    response = client.get("/healthz")
    # A health check that hangs is worse than none: it must answer within seconds.
    assert time.monotonic() - started < 5
    assert response.status_code == 503
    body = response.json()
    assert body["database"]["ok"] is True
    assert body["broker"]["ok"] is False
    assert body["workers"]["ok"] is False


def test_it_says_503_when_no_worker_answers(client, broker):
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["broker"]["ok"] is True
    assert response.json()["workers"]["error"] == "no worker answered"


def test_it_says_200_when_a_worker_answers(client, celery_worker):
    response = client.get("/healthz")
    assert response.status_code == 200, response.json()
    assert response.json()["workers"]["workers"]

"""Checks behind /healthz. Each answers within a couple of seconds, whatever is down."""

from typing import Any

import redis
from django.conf import settings
from django.db import connection

from portal.celery import app as celery_app
from portal.models import Heartbeat

TIMEOUT = 1.0


def check_database() -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:
        return {"ok": False, "error": str(exc)}
    return {"ok": True, "vendor": connection.vendor}


def check_broker() -> dict[str, Any]:
    client = redis.Redis.from_url(
        settings.CELERY_BROKER_URL, socket_connect_timeout=TIMEOUT, socket_timeout=TIMEOUT
    )
    try:
        client.ping()
    except redis.RedisError as exc:
        return {"ok": False, "error": str(exc)}
    finally:
        client.close()
    return {"ok": True}


def check_workers(broker_ok: bool) -> dict[str, Any]:
    # A control ping through a dead broker would sit in connection retries.
    if not broker_ok:
        return {"ok": False, "error": "broker unreachable", "workers": []}
    try:
        replies = celery_app.control.ping(timeout=TIMEOUT)
    except Exception as exc:
        return {"ok": False, "error": str(exc), "workers": []}
    workers = sorted(name for reply in replies for name in reply)
    result: dict[str, Any] = {"ok": bool(workers), "workers": workers}
    if not workers:
        result["error"] = "no worker answered"
    return result


def last_task_run() -> str | None:
    beat = Heartbeat.objects.filter(name="queue").first()
    return beat.seen.isoformat() if beat else None


def report() -> dict[str, Any]:
    database = check_database()
    broker = check_broker()
    workers = check_workers(broker["ok"])
    if database["ok"]:
        workers["last_task"] = last_task_run()
    return {
        "ok": database["ok"] and broker["ok"] and workers["ok"],
        "database": database,
        "broker": broker,
        "workers": workers,
    }

"""Checks behind /healthz. Each answers within a couple of seconds, whatever is down."""

import json
import time
from typing import Any

import redis
from django.conf import settings
from django.db import connection
from django.db.models import Min

from portal.celery import app as celery_app
from portal.models import EmbeddingChunk, Heartbeat

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


def check_queues() -> dict[str, Any]:
    """Each queue's length and the age of its oldest message (None when it is empty)."""
    client = redis.Redis.from_url(
        settings.CELERY_BROKER_URL, socket_connect_timeout=TIMEOUT, socket_timeout=TIMEOUT
    )
    queues: dict[str, Any] = {}
    try:
        for queue in settings.CELERY_TASK_QUEUES:
            # Messages go in on the left and out on the right: the oldest is the last.
            length, oldest = client.pipeline().llen(queue.name).lindex(queue.name, -1).execute()
            queues[queue.name] = {"length": length, "oldest_seconds": _age(oldest)}
    except redis.RedisError as exc:
        return {"error": str(exc)}
    finally:
        client.close()
    return queues


def _age(message: bytes | None) -> float | None:
    if message is None:
        return None
    sent = json.loads(message).get("headers", {}).get("sent_at")
    return None if sent is None else round(time.time() - sent, 1)


def waiting_chunks() -> dict[str, Any]:
    """Embedding chunks not yet in the bulk queue: it takes a few per app at a time."""
    waiting = EmbeddingChunk.objects.filter(state=EmbeddingChunk.State.WAITING)
    found = waiting.aggregate(oldest=Min("changed"))["oldest"]
    return {
        "count": waiting.count(),
        "oldest_seconds": None if found is None else round(time.time() - found.timestamp(), 1),
    }


def last_task_run() -> str | None:
    beat = Heartbeat.objects.filter(name="queue").first()
    return beat.seen.isoformat() if beat else None


def report() -> dict[str, Any]:
    database = check_database()
    broker = check_broker()
    workers = check_workers(broker["ok"])
    queues = check_queues() if broker["ok"] else {}
    if database["ok"]:
        workers["last_task"] = last_task_run()
        if "bulk" in queues:
            queues["bulk"]["waiting_chunks"] = waiting_chunks()
    return {
        "ok": database["ok"] and broker["ok"] and workers["ok"],
        "database": database,
        "broker": broker,
        "workers": workers,
        "queues": queues,
    }

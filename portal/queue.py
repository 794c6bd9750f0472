"""Hand work to the Celery workers once the database transaction that needs it commits."""

import logging
from collections.abc import Callable

from celery import Task
from django.db import transaction
from kombu.exceptions import OperationalError

from portal import health

log = logging.getLogger(__name__)


class QueueUnavailable(Exception):
    """The broker did not take the job; the caller's status row has been marked failed."""

    message = "The job queue is unavailable right now (is Redis running?). Try again shortly."


def ensure_available() -> None:
    """Raise QueueUnavailable unless the broker answers, before work that needs a worker."""
    error = health.check_broker().get("error")
    if error is not None:
        log.warning("the job queue is unavailable: %s", error)
        raise QueueUnavailable(QueueUnavailable.message)


def send(task: Task, *argsets: tuple) -> str | None:
    """Queue one `task` message per argument tuple; None, or the reason it failed."""
    # Ask Redis first: a publish can take seconds to fail, and a broker that is down
    # must be reported now rather than leave a job waiting for nothing.
    error = health.check_broker().get("error")
    if error is not None:
        return error
    try:
        for args in argsets:
            task.apply_async(args=args, retry=False)
    except OperationalError as exc:
        return str(exc)
    return None


def enqueue_on_commit(task: Task, *args, on_failure: Callable[[], None]) -> None:
    """Send `task` after commit; if the broker refuses, call `on_failure` and raise.

    Raising from the on-commit callback reaches the code that closed the transaction,
    so a view can tell the user at once, and no status row waits for a task that
    was never sent.
    """

    def send_or_fail() -> None:
        error = send(task, args)
        if error is not None:
            log.warning("could not enqueue %s%r: %s", task.name, args, error)
            on_failure()
            raise QueueUnavailable(QueueUnavailable.message)

    transaction.on_commit(send_or_fail)


def enqueue_on_commit_if_possible(task: Task, argsets: list[tuple]) -> None:
    """Send `task` messages after commit, for work that may also be done later."""

    def send_or_log() -> None:
        error = send(task, *argsets)
        if error is not None:
            log.warning("could not enqueue %d %s messages: %s", len(argsets), task.name, error)

    if argsets:
        transaction.on_commit(send_or_log)

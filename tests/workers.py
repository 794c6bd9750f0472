"""Real Celery worker processes on the test database and Redis, for the fault tests."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import redis
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


@contextmanager
def worker_process(
    broker: str,
    log_path: Path,
    *,
    app: str = "portal",
    concurrency: int = 1,
    queues: str = "interactive,bulk",
    env: dict[str, str] | None = None,
    flush: bool = True,
) -> Iterator[subprocess.Popen]:
    """A `celery worker` subprocess (prefork, `concurrency` children) consuming `queues`,
    killed on exit.

    The queues are emptied first, unless `flush` is False: messages left by earlier tests
    name rows that are gone.
    """
    if flush:
        redis.Redis.from_url(broker).flushdb()
    environment = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "REDIS_URL": broker,
        "PORTAL_HEARTBEAT_SECONDS": "1",
        "HF_HUB_OFFLINE": "1",
        **(env or {}),
    }
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                app,
                "worker",
                "--pool",
                "prefork",
                "--concurrency",
                str(concurrency),
                "--queues",
                queues,
                "--loglevel",
                "INFO",
                "--without-mingle",
                "--without-gossip",
            ],
            cwd=ROOT,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield process
        finally:
            kill_all(process)


def kill_all(process: subprocess.Popen) -> None:
    """SIGKILL the worker's main process and its children (one process group)."""
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(line) for line in out.split()]


def wait_for(condition, timeout: float) -> bool:
    """Whether `condition()` came true within `timeout` seconds (polled every 0.2 s)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return bool(condition())

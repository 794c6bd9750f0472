"""Find a Redis for `make run`: the configured one, else a local redis-server we start."""

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import redis

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class RedisUnavailable(Exception):
    pass


def answers(url: str, timeout: float = 1.0) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def find_redis_server(log) -> str:
    """The redis-server program, installed from Debian's packages if we can and must."""
    found = shutil.which("redis-server")
    if found:
        return found
    if shutil.which("apt-get") and os.geteuid() == 0:
        log("redis-server is not installed; installing Debian's redis-server package...")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "redis-server"], check=False, env=env)
        found = shutil.which("redis-server")
        if found:
            return found
    raise RedisUnavailable(
        "Redis is needed: install it (Debian/Ubuntu: sudo apt-get install redis-server; "
        "macOS: brew install redis) or set REDIS_URL to a running server."
    )


def start(url: str, data_dir: Path, log, **popen: Any) -> subprocess.Popen | None:
    """Return None when `url` already answers, else a redis-server child serving it
    (started with the `popen` arguments)."""
    if answers(url):
        return None
    parts = urlsplit(url)
    if parts.hostname not in LOOPBACK:
        raise RedisUnavailable(f"Redis at {parts.hostname}:{parts.port or 6379} does not answer.")
    program = find_redis_server(log)
    data_dir.mkdir(parents=True, exist_ok=True)
    port = str(parts.port or 6379)
    log(f"Starting redis-server on 127.0.0.1:{port} (data in {data_dir})")
    process = subprocess.Popen(
        [
            program,
            "--bind",
            "127.0.0.1",
            "--port",
            port,
            "--dir",
            str(data_dir),
            "--appendonly",
            "yes",
            "--save",
            "",
            "--maxmemory-policy",
            "noeviction",
            "--loglevel",
            "warning",
        ],
        **popen,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if answers(url, timeout=0.5):
            return process
        if process.poll() is not None:
            break
        time.sleep(0.1)
    process.kill()
    raise RedisUnavailable(f"redis-server did not start on port {port}.")

"""`manage.py serve`, as `make run` starts it: real processes, stopped as Ctrl-C stops them."""

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from tests.conftest import free_port
from tests.workers import ROOT, database_url, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

SECONDS = 180


def fetch(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError:
        return 0, ""


def group_members(group: int) -> list[str]:
    found = subprocess.run(["pgrep", "-g", str(group)], capture_output=True, text=True)
    return found.stdout.split()


def test_it_serves_the_portal_with_a_worker_per_queue_and_ctrl_c_stops_everything(broker, tmp_path):
    address = f"127.0.0.1:{free_port()}"
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")},
        "DATABASE_URL": database_url(),
        "REDIS_URL": broker,
        "PORTAL_DATA_DIR": str(tmp_path / "data"),
        "PORTAL_ONNX_CACHE_DIR": str(ROOT / "data" / "onnx"),
        "HF_HUB_OFFLINE": "1",
    }
    log = tmp_path / "serve.log"
    with log.open("w") as output:
        server = subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--addr", address, "--concurrency", "1"],
            cwd=ROOT,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as a terminal gives it
        )
    try:

        def healthy() -> bool:
            status, body = fetch(f"http://{address}/healthz")
            return status == 200 and len(json.loads(body)["workers"]["workers"]) == 2

        assert wait_for(healthy, SECONDS), log.read_text()[-4000:]
        workers = json.loads(fetch(f"http://{address}/healthz")[1])["workers"]["workers"]
        assert sorted(name.split("@")[0] for name in workers) == ["bulk", "interactive"]

        status, page = fetch(f"http://{address}/no/such/page/")
        assert status == 404
        assert "Textcat Portal" in page and "URLconf" not in page and "Traceback" not in page
        stylesheet = fetch(f"http://{address}/static/portal/portal.css")
        assert stylesheet[0] == 200  # served by WhiteNoise, not by a development server

        os.killpg(server.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        server.wait(timeout=60)
        assert wait_for(lambda: not group_members(server.pid), 30), group_members(server.pid)
    finally:
        if server.poll() is None or group_members(server.pid):
            os.killpg(server.pid, signal.SIGKILL)
    output = log.read_text()
    assert "Traceback" not in output, output[-4000:]
    assert "Starting gunicorn" in output
    assert "runserver" not in output and "development server" not in output
    # Run as root (as CI is), it says so once, in its own words, instead of Celery's warning.
    if os.geteuid() == 0:
        assert output.count("Running as root") == 1
        assert "superuser privileges" not in output
    assert (tmp_path / "data" / "secret_key").stat().st_mode & 0o777 == 0o600

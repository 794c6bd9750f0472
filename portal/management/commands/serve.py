import os
import pwd
import signal
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from portal import localredis

# Each worker's processes, the web server's processes and its threads per process.
INTERACTIVE_PROCESSES = 2
WEB_PROCESSES = 2
WEB_THREADS = 4
# The bulk worker yields the cores to the web server and the interactive worker.
BULK_NICENESS = 10


class Command(BaseCommand):
    help = (
        "Serve the portal: the web server, one worker for each queue (the interactive one "
        "with the scheduler) and, if nothing answers at REDIS_URL, a Redis of its own."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--addr",
            default=os.getenv("PORTAL_ADDR", "127.0.0.1:8000"),
            help="host:port to serve on (default: PORTAL_ADDR, else 127.0.0.1:8000)",
        )
        parser.add_argument(
            "--concurrency",
            type=int,
            default=os.cpu_count() or 1,
            help="processes of the bulk worker, which embeds uploads (default: one per core)",
        )
        parser.add_argument(
            "--dev",
            action="store_true",
            help="Django's development server, reloading on code changes (with DJANGO_DEBUG)",
        )

    def handle(self, *args, addr: str, concurrency: int, dev: bool, **options) -> None:
        account = self.account()
        try:
            redis_process = localredis.start(
                settings.REDIS_URL, settings.DATA_DIR / "redis", self.stdout.write, **account
            )
        except localredis.RedisUnavailable as exc:
            raise CommandError(str(exc)) from None
        children = {} if redis_process is None else {"redis": redis_process}
        if not dev:
            call_command("collectstatic", interactive=False, verbosity=0)
        children["web"] = subprocess.Popen(self.web_command(addr, dev), **account)
        celery = [sys.executable, "-m", "celery", "-A", "portal", "worker", "--loglevel", "INFO"]
        children["worker-interactive"] = subprocess.Popen(
            [
                *celery,
                "--queues",
                "interactive",
                "--hostname",
                "interactive@%h",
                "--concurrency",
                str(INTERACTIVE_PROCESSES),
                "--beat",
                "--schedule",
                str(settings.DATA_DIR / "celerybeat-schedule"),
            ],
            cwd=settings.BASE_DIR,
            **account,
        )
        children["worker-bulk"] = subprocess.Popen(
            [
                *celery,
                "--queues",
                "bulk",
                "--hostname",
                "bulk@%h",
                "--concurrency",
                str(concurrency),
            ],
            cwd=settings.BASE_DIR,
            preexec_fn=lambda: os.nice(BULK_NICENESS),
            **account,
        )
        self.stdout.write(
            self.style.SUCCESS(f"\nTextcat Portal: http://{addr}/  (Ctrl-C stops it)\n")
        )
        self.supervise(children)

    def web_command(self, addr: str, dev: bool) -> list[str]:
        if dev:
            return [sys.executable, str(settings.BASE_DIR / "manage.py"), "runserver", addr]
        return [
            sys.executable,
            "-m",
            "gunicorn",
            "portal.wsgi",
            "--bind",
            addr,
            "--workers",
            str(WEB_PROCESSES),
            "--threads",
            str(WEB_THREADS),
            "--timeout",
            "60",
            "--graceful-timeout",
            "10",
            "--no-control-socket",
        ]

    def account(self) -> dict[str, Any]:
        """Popen arguments that run the children as the user who ran `sudo make run`.

        Started as root by anyone else, say once why everything runs as root, so that
        Celery's warning about it is not the first thing a user reads.
        """
        env = {**os.environ}
        if os.geteuid() != 0:
            return {"env": env}
        name = os.environ.get("SUDO_USER", "")
        try:
            user = pwd.getpwnam(name) if name and name != "root" else None
        except KeyError:
            user = None
        if user is None:
            self.stdout.write(
                "Running as root, with no SUDO_USER to switch to: the web server and the "
                "workers run as root too. Run `make run` as an ordinary user to avoid it."
            )
            env["PORTAL_ROOT_EXPLAINED"] = "1"
            return {"env": env}
        self.stdout.write(f"Started as root: running the portal as {user.pw_name}.")
        (settings.DATA_DIR / "redis").mkdir(parents=True, exist_ok=True)
        for folder, _, files in os.walk(settings.DATA_DIR):
            for path in [folder, *(os.path.join(folder, f) for f in files)]:
                os.chown(path, user.pw_uid, user.pw_gid)
        env.update(HOME=user.pw_dir, USER=user.pw_name, LOGNAME=user.pw_name)
        return {"env": env, "user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}

    def supervise(self, children: dict[str, subprocess.Popen]) -> None:
        """Wait until Ctrl-C or until one process ends, then stop them all."""
        stopping = False

        def stop(signum, frame) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        ended = None
        while not stopping and ended is None:
            ended = next((name for name, p in children.items() if p.poll() is not None), None)
            time.sleep(0.3)
        # Stop the web server and workers before Redis, so the workers can finish cleanly.
        redis_process = children.pop("redis", None)
        for group in (children.values(), [redis_process] if redis_process else []):
            running = [process for process in group if process.poll() is None]
            for process in running:
                process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 15
            for process in running:
                try:
                    process.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        if ended:
            returncode = (children.get(ended) or redis_process).returncode
            raise CommandError(f"{ended} exited with code {returncode}.")

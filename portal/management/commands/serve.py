import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from portal import localredis


class Command(BaseCommand):
    help = "Run the web server, a Celery worker (with its scheduler) and, if needed, Redis."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--addr", default="127.0.0.1:8000", help="host:port to serve on")
        parser.add_argument("--concurrency", type=int, default=2, help="worker processes")

    def handle(self, *args, addr: str, concurrency: int, **options) -> None:
        try:
            redis_process = localredis.start(
                settings.REDIS_URL, settings.DATA_DIR / "redis", self.stdout.write
            )
        except localredis.RedisUnavailable as exc:
            raise CommandError(str(exc)) from None
        children = {} if redis_process is None else {"redis": redis_process}
        manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
        children["web"] = subprocess.Popen([*manage, "runserver", addr, "--noreload"])
        children["worker"] = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "portal",
                "worker",
                "--beat",
                "--loglevel",
                "INFO",
                "--concurrency",
                str(concurrency),
                "--schedule",
                str(settings.DATA_DIR / "celerybeat-schedule"),
            ],
            cwd=settings.BASE_DIR,
        )
        self.stdout.write(
            self.style.SUCCESS(f"\nTextcat Portal: http://{addr}/  (Ctrl-C stops it)\n")
        )
        self.supervise(children)

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
        # Stop the web server and worker before Redis, so the worker can finish cleanly.
        for name in ("web", "worker", "redis"):
            process = children.get(name)
            if process and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
        if ended:
            raise CommandError(f"{ended} exited with code {children[ended].returncode}.")

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from portal.env import ConfigError, envbool, envint

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION = {
    "DJANGO_DEBUG": "False",
    "PORTAL_HTTPS": "True",
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
    "DJANGO_ALLOWED_HOSTS": "portal.example.com",
}


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def load_settings(env: dict[str, str]) -> subprocess.CompletedProcess:
    return run(
        ["-c", "import django; django.setup()"],
        {**env, "DJANGO_SETTINGS_MODULE": "portal.settings"},
    )


def test_without_a_secret_key_it_makes_one_once_readable_by_its_owner_only(tmp_path):
    print_key = [
        "-c",
        "import django; django.setup(); from django.conf import settings as s; print(s.SECRET_KEY)",
    ]
    env = {"DJANGO_SETTINGS_MODULE": "portal.settings", "PORTAL_DATA_DIR": str(tmp_path)}
    first, second = (run(print_key, env) for _ in range(2))
    assert first.returncode == 0, first.stderr
    key = first.stdout.strip()
    assert len(key) >= 50 and key != settings.DEVELOPMENT_SECRET_KEY
    assert second.stdout.strip() == key
    stored = tmp_path / "secret_key"
    assert stored.read_text() == key
    assert stored.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["secret_key"]


def test_debug_is_off_unless_asked_for(tmp_path):
    probe = [
        "-c",
        "import django; django.setup(); from django.conf import settings as s; print(s.DEBUG)",
    ]
    env = {"DJANGO_SETTINGS_MODULE": "portal.settings", "PORTAL_DATA_DIR": str(tmp_path)}
    assert run(probe, env).stdout.split() == ["False"]
    assert run(probe, {**env, "DJANGO_DEBUG": "True"}).stdout.split() == ["True"]


def test_production_refuses_the_development_secret_key():
    key = settings.DEVELOPMENT_SECRET_KEY
    result = load_settings({"DJANGO_DEBUG": "False", "DJANGO_SECRET_KEY": key})
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is the development key" in result.stderr


def test_production_starts_with_a_real_secret_key():
    assert load_settings(PRODUCTION).returncode == 0


def test_check_deploy_reports_no_warnings():
    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_time_limits_are_ordered():
    # A task must be stopped before Redis redelivers it to another worker.
    assert settings.CELERY_TASK_SOFT_TIME_LIMIT < settings.CELERY_TASK_TIME_LIMIT
    assert settings.CELERY_TASK_TIME_LIMIT < settings.CELERY_BROKER_VISIBILITY_TIMEOUT
    # The reaper fails a job only once no worker can still be running or redelivering it.
    assert settings.CELERY_BROKER_VISIBILITY_TIMEOUT < settings.PORTAL_REAPER_DEADLINE
    transport = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    assert transport["visibility_timeout"] == settings.CELERY_BROKER_VISIBILITY_TIMEOUT


def test_a_dead_training_is_reaped_only_after_it_could_be_retried():
    from portal.training import stale_seconds

    assert settings.PORTAL_HEARTBEAT_SECONDS < stale_seconds() < settings.PORTAL_HEARTBEAT_DEADLINE


def test_celery_is_crash_safe():
    assert settings.CELERY_TASK_ACKS_LATE
    assert settings.CELERY_TASK_REJECT_ON_WORKER_LOST
    assert settings.CELERY_WORKER_PREFETCH_MULTIPLIER == 1
    # A worker outlives a Redis outage of any length (Celery's default gives up after 100).
    assert settings.CELERY_BROKER_CONNECTION_MAX_RETRIES is None


def test_sqlite_waits_instead_of_failing_when_locked():
    database = settings.DATABASES["default"]
    if database["ENGINE"] != "django.db.backends.sqlite3":
        pytest.skip("the suite runs on PostgreSQL")
    assert "journal_mode=WAL" in database["OPTIONS"]["init_command"]
    assert database["OPTIONS"]["timeout"] >= 5


def test_envbool_accepts_only_true_and_false(monkeypatch):
    monkeypatch.setenv("FLAG", "True")
    assert envbool("FLAG", "False") is True
    monkeypatch.setenv("FLAG", "yes")
    with pytest.raises(ConfigError, match="FLAG must be True or False"):
        envbool("FLAG", "False")


def test_envint_rejects_words(monkeypatch):
    monkeypatch.setenv("LIMIT", "ten")
    with pytest.raises(ConfigError, match="LIMIT must be a whole number"):
        envint("LIMIT", "1")


def test_sign_in_and_token_throttling_defaults():
    assert settings.AUTHENTICATION_BACKENDS[0] == "axes.backends.AxesStandaloneBackend"
    assert settings.AXES_FAILURE_LIMIT == 5
    assert settings.AXES_COOLOFF_TIME.total_seconds() == 15 * 60
    assert settings.AXES_LOCKOUT_PARAMETERS == [["username", "ip_address"]]
    assert settings.MIDDLEWARE[-1] == "axes.middleware.AxesMiddleware"
    assert settings.PORTAL_API_TOKEN_FAILURE_LIMIT == 10
    assert settings.PORTAL_API_TOKEN_COOLOFF_SECONDS == 900


def test_throttling_comes_from_the_environment():
    probe = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.AXES_FAILURE_LIMIT, s.AXES_COOLOFF_TIME.total_seconds(), "
        "s.PORTAL_API_TOKEN_FAILURE_LIMIT, s.PORTAL_API_TOKEN_COOLOFF_SECONDS)"
    )
    env = {
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "PORTAL_LOGIN_FAILURE_LIMIT": "3",
        "PORTAL_LOGIN_COOLOFF_MINUTES": "60",
        "PORTAL_API_TOKEN_FAILURE_LIMIT": "20",
        "PORTAL_API_TOKEN_COOLOFF_SECONDS": "120",
    }
    result = run(["-c", probe], env)
    assert result.stdout.split() == ["3", "3600.0", "20", "120"], result.stderr


def test_scripts_come_only_from_our_own_files():
    directives = settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]
    assert directives["script-src"] == ["'self'"]
    assert all("unsafe" not in source for source in directives["default-src"])

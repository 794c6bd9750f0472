import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.core.management import call_command

from portal.celery import app as celery_app

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="session", autouse=True)
def static_files() -> None:
    """Collect the static files, as `manage.py serve` does: pages name them by their hash."""
    call_command("collectstatic", interactive=False, verbosity=0)


@pytest.fixture
def alice(django_user_model):
    """The owner of the objects under test."""
    return django_user_model.objects.create_user("alice", password=PASSWORD)


@pytest.fixture
def bob(django_user_model):
    """Another user of the same server."""
    return django_user_model.objects.create_user("bob", password=PASSWORD)


@pytest.fixture
def charlie(django_user_model):
    """An outsider with an account and nothing else."""
    return django_user_model.objects.create_user("charlie", password=PASSWORD)


@pytest.fixture
def app(alice):
    """Alice's app, with the spam and ham concepts below when a test asks for them."""
    from portal.models import App

    return App.objects.create(owner=alice, slug="spam-filter")


@pytest.fixture
def spam(app):
    from portal.models import Concept

    return Concept.objects.create(app=app, slug="spam", name="Spam")


@pytest.fixture
def ham(app):
    from portal.models import Concept

    return Concept.objects.create(app=app, slug="ham", name="Ham")


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> Iterator[str]:
    """A real Redis of our own on a free port.

    Without redis-server, a port where nothing answers: tests that need a broker then
    fail loudly (CI installs redis-server), the others see "queue unavailable".
    """
    program = shutil.which("redis-server")
    if program is None:
        yield f"redis://127.0.0.1:{free_port()}/0"
        return
    port = free_port()
    process = subprocess.Popen(
        [
            program,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path_factory.mktemp("redis")),
        ],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                process.kill()
                raise
            time.sleep(0.05)
    yield url
    process.terminate()
    process.wait(timeout=10)


def _forget_connections() -> None:
    celery_app.close()
    # close() keeps the producer pool, which holds a connection to the previous broker.
    celery_app.amqp._producer_pool = None


def _use_broker(url: str, settings) -> Iterator[str]:
    """Point Django and Celery at `url` for one test."""
    previous = celery_app.conf.broker_url
    settings.REDIS_URL = settings.CELERY_BROKER_URL = url
    celery_app.conf.broker_url = url
    _forget_connections()
    yield url
    celery_app.conf.broker_url = previous
    _forget_connections()


@pytest.fixture(autouse=True)
def broker(redis_url, settings) -> Iterator[str]:
    """The test Redis as the broker, in every test: nothing reaches the machine's Redis."""
    yield from _use_broker(redis_url, settings)


@pytest.fixture(autouse=True)
def empty_cache() -> None:
    """Each test starts with no counted API token failures and no heads cached by earlier
    tests (their version IDs may be reused by this test's rows)."""
    from django.core.cache import cache

    from portal import prediction

    cache.clear()
    prediction._heads.clear()


@pytest.fixture
def dead_broker(settings) -> Iterator[str]:
    """A broker URL where nothing answers: Redis is down."""
    yield from _use_broker(f"redis://127.0.0.1:{free_port()}/0", settings)


@pytest.fixture
def celery_worker(broker):
    """A real Celery worker, in a thread of this process, consuming from the test Redis."""
    from celery.contrib.testing.worker import start_worker

    # Register the tasks before the worker thread finalizes the app, rather than racing
    # its autodiscovery against the first request's imports.
    import portal.tasks  # noqa: F401

    # Messages left by earlier tests name rows that are gone; start from an empty queue.
    redis.Redis.from_url(broker).flushdb()
    with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=10) as w:
        yield w


def chromium_path() -> str | None:
    return (
        os.getenv("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")
    )


@pytest.fixture(scope="session")
def browser():
    path = chromium_path()
    if path is None:
        if os.getenv("CI") == "true":
            pytest.fail("Chromium is not installed; .ci/run installs Debian's chromium package")
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls that the
    # tests make around it are still synchronous and safe.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=path,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def screenshot(request):
    """Save a full-page screenshot under artifacts/screenshots/ (git-ignored)."""
    folder = ARTIFACTS / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)

    def take(page, name: str) -> Path:
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture(scope="session")
def embedder():
    """The real bundled embedding model, loaded once per test run."""
    from classifier import embedders

    return embedders.get_embedder(embedders.DEFAULT_MODEL)


@pytest.fixture(scope="session")
def django_db_modify_db_settings(tmp_path_factory) -> None:
    """A file for the SQLite test database, so worker processes can open it too."""
    database = settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.sqlite3":
        database.setdefault("TEST", {})["NAME"] = str(
            tmp_path_factory.mktemp("database") / "test.sqlite3"
        )


SPAM_TEXTS = [
    "WINNER!! You have been selected to receive a $900 prize. Call now to claim.",
    "Free entry in a weekly competition to win cup final tickets. Text WIN to 87121.",
    "URGENT! Your mobile number has won a 2000 bonus. Call today to collect.",
    "Congratulations, you won a free cruise! Reply YES to claim your reward.",
    "Cheap loans approved in minutes, no credit check. Visit our site now!",
]
HAM_TEXTS = [
    "Are we still meeting for lunch tomorrow at noon?",
    "I'll be home late tonight, don't wait for me for dinner.",
    "Thanks for the notes from class, they really helped.",
    "Can you pick up some milk on your way back?",
    "Happy birthday! Hope you have a wonderful day.",
]


@pytest.fixture
def spam_model(alice):
    """Alice's model "detector" set up on 5 spam and 5 ham inputs (version 1 of "emails")."""
    from portal import versions
    from portal.models import (
        Annotation,
        App,
        Concept,
        Dataset,
        Input,
        TrainableModel,
        default_params,
        text_hash,
    )

    app = App.objects.create(owner=alice, slug="spam-filter")
    dataset = Dataset.objects.create(app=app, slug="emails")
    for slug, texts in (("spam", SPAM_TEXTS), ("ham", HAM_TEXTS)):
        concept = Concept.objects.create(app=app, slug=slug, name=slug.title())
        for text in texts:
            item = Input.objects.create(app=app, text=text, text_hash=text_hash(text))
            dataset.inputs.add(item)
            Annotation.objects.create(input=item, concept=concept, value=1)
    version = versions.create_version(dataset)
    versions.snapshot(version.pk)
    params = default_params()
    params.update(dataset_id="emails", dataset_version_id="1", concepts=["spam", "ham"])
    # Embedding the background corpus takes seconds per fresh test database.
    params["train_params"]["enrich_dataset"] = "Disabled"
    return TrainableModel.objects.create(app=app, slug="detector", params=params)


@pytest.fixture
def trained_model(spam_model, embedder):
    """`spam_model` with one trained version."""
    from portal import training

    version = training.start_training(spam_model)
    training.train(version.pk)
    return spam_model

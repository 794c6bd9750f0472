"""Predictions over real HTTP: Try your own text latency and the predict API under load.

A gunicorn server of our own serves the benchmark database on a free loopback port. The
raw baseline is the same model doing the same work in this process: `encode` of the
sentence plus `predict_proba` of the trained head.
"""

import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager

from bench import charts
from bench.common import ROOT, Result, Stats

SENTENCE = "Congratulations! You have won a free cruise. Reply YES to claim your prize now."
SPAM = [
    "WINNER!! You have been selected to receive a $900 prize. Call now to claim.",
    "Free entry in a weekly competition to win cup final tickets. Text WIN to 87121.",
    "URGENT! Your mobile number has won a 2000 bonus. Call today to collect.",
    "Cheap loans approved in minutes, no credit check. Visit our site now!",
    "You are a lucky winner of a luxury holiday, claim your reward before midnight.",
]
HAM = [
    "Are we still meeting for lunch tomorrow at noon?",
    "I'll be home late tonight, don't wait for me for dinner.",
    "Thanks for the notes from class, they really helped.",
    "Can you pick up some milk on your way back?",
    "Happy birthday! Hope you have a wonderful day.",
]


def trained_model():
    """A model trained in-process on 10 texts, and a session cookie and an API token for
    its owner."""
    from django.contrib.auth import get_user_model
    from django.contrib.sessions.backends.db import SessionStore

    from portal import training, versions
    from portal.models import (
        Annotation,
        ApiToken,
        App,
        Concept,
        Dataset,
        Input,
        ModelVersion,
        TrainableModel,
        default_params,
        text_hash,
    )

    user, _ = get_user_model().objects.get_or_create(username="bench-predict")
    App.objects.filter(owner=user).delete()
    app = App.objects.create(owner=user, slug="predict")
    dataset = Dataset.objects.create(app=app, slug="sms")
    for slug, texts in (("spam", SPAM), ("ham", HAM)):
        concept = Concept.objects.create(app=app, slug=slug, name=slug)
        for text in texts:
            item = Input.objects.create(app=app, text=text, text_hash=text_hash(text))
            dataset.inputs.add(item)
            Annotation.objects.create(input=item, concept=concept, value=1)
    version = versions.create_version(dataset)
    versions.snapshot(version.pk)
    params = default_params()
    params.update(dataset_id="sms", dataset_version_id="1", concepts=["spam", "ham"])
    model = TrainableModel.objects.create(app=app, slug="spam", params=params)
    trained = ModelVersion.objects.create(
        model=model, number=1, params=params, dataset_version=version, concepts=["spam", "ham"]
    )
    training.train(trained.pk)
    session = SessionStore()
    session["_auth_user_id"] = str(user.pk)
    session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    session["_auth_user_hash"] = user.get_session_auth_hash()
    session.save()
    _, key = ApiToken.issue(user, "bench")
    return model, session.session_key, key


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def server(workers: int):
    port = free_port()
    # Production settings (DEBUG off), over plain HTTP on the loopback interface.
    env = {
        **os.environ,
        "DJANGO_DEBUG": "False",
        "DJANGO_SECURE_SSL_REDIRECT": "False",
        "HF_HUB_OFFLINE": "1",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "portal.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            "--timeout",
            "60",  # as the Dockerfile
        ],
        cwd=ROOT,
        env=env,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


def post(url: str, body: bytes, cookies: str, content_type: str, headers=None) -> float:
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Cookie": cookies, "Content-Type": content_type, **(headers or {})},
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}")
    return time.perf_counter() - started


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def stats(values: list[float]) -> Stats:
    return Stats(statistics.median(values), min(values), max(values), len(values))


def run(quick: bool) -> tuple[list[Result], list[str], list[str]]:
    """Try your own text against the raw library; the API under load: the results, the
    load table's rows and the charts' Markdown lines."""
    from classifier import embedders
    from classifier.hybrid import head_proba, load_head

    model, cookie, key = trained_model()
    version = model.versions.get()
    head = load_head(bytes(version.head))
    raw_model = embedders.get_embedder(embedders.BUNDLED_MODEL)._model
    samples = 100 if quick else 400

    def raw() -> float:
        started = time.perf_counter()
        X = raw_model.encode([SENTENCE], normalize_embeddings=True, show_progress_bar=False)
        head_proba(head, [SENTENCE], X)
        return time.perf_counter() - started

    notes, rates = [], []
    with server(workers=2) as base:
        api = f"{base}/api/v1/apps/predict/models/spam/predict"
        body = json.dumps({"texts": [SENTENCE]}).encode()
        deadline = time.monotonic() + 120
        while True:  # until both workers have loaded the model
            try:
                for _ in range(8):
                    post(api, body, "", JSON, {"Authorization": f"Token {key}"})
                break
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        # Try your own text exactly as the page sends it: an htmx form post, with
        # Django's CSRF cookie and header (any 32-letter secret will do as both).
        try_url = f"{base}/apps/predict/models/spam/try/"
        form = urllib.parse.urlencode({"text": SENTENCE}).encode()
        csrf = "b" * 32
        headers = f"sessionid={cookie}; csrftoken={csrf}"
        ours, baseline = [], []
        for _ in range(samples):
            ours.append(
                post(try_url, form, headers, FORM, {"X-CSRFToken": csrf, "HX-Request": "true"})
            )
            baseline.append(raw())
        ratio, p99 = percentile(ours, 0.5) / percentile(baseline, 0.5), percentile(ours, 0.99)
        results = [
            Result(
                "Try your own text, one sentence, HTTP round trip (warm)",
                stats(ours),
                stats(baseline),
                f"{samples} requests; ours p50 {ms(percentile(ours, 0.5))}, p99 {ms(p99)};"
                f" raw (encode + predict_proba in-process) p50 {ms(percentile(baseline, 0.5))},"
                f" p99 {ms(percentile(baseline, 0.99))}. Target p50 ≤ 1.5× raw ({ratio:.2f}×):"
                f" {'met' if ratio <= 1.5 else '**not met**'}",
            )
        ]
        clients = (1, 4, 16)
        for count in clients:
            row, rate = load(api, body, key, count, 5 if quick else 30)
            notes.append(row)
            rates.append(rate)
    shares = (0.5, 0.99)
    return (
        results,
        notes,
        [
            charts.ours_vs_raw(
                "predictions",
                "Try your own text: latency of one sentence",
                ["p50", "p99"],
                [percentile(ours, share) * 1000 for share in shares],
                [percentile(baseline, share) * 1000 for share in shares],
                "ms",
            ),
            "",
            charts.bars(
                "predict-api",
                "Predict API: requests/s by concurrent clients",
                [f"{count} client{'s' * (count > 1)}" for count in clients],
                rates,
                "requests/s",
            ),
        ],
    )


def load(url: str, body: bytes, key: str, clients: int, seconds: float) -> tuple[str, float]:
    """The load table's row for `clients` clients posting for `seconds`, and requests/s."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client() -> None:
        while time.monotonic() < stop:
            try:
                took = post(url, body, "", JSON, {"Authorization": f"Token {key}"})
            except Exception as exc:
                with lock:
                    errors.append(str(exc))
                continue
            with lock:
                latencies.append(took)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rate = len(latencies) / seconds
    return (
        f"| {clients} | {seconds:.0f} s | {len(latencies)} | {len(errors)} | {rate:.1f} | "
        f"{ms(percentile(latencies, 0.5))} | {ms(percentile(latencies, 0.99))} |",
        rate,
    )

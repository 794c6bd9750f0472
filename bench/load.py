"""Load: users labeling in the browser and through the API while trainings run.

The app is served as in production: gunicorn with 3 sync workers (as the Dockerfile),
DEBUG off, collected static files, and a real Celery worker process with 4 children on a
Redis server of its own, all on the benchmark's database. For `seconds`, 16 users label
their own inputs without pausing: 12 as the inputs explorer does (login form, CSRF token,
htmx posts of the row's label forms, the next page when done with one), 4 through the
API (PATCH with the input's revision). Meanwhile 4 trainings run: each of 4 models is
trained again as soon as its last version is finished.

Every client keeps the labels the server said it saved. Afterwards the database must hold
exactly those: an acknowledged label that is missing or different is lost.
"""

import http.client
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path
from unittest import mock

from bench.common import ROOT, sentences
from bench.predict import free_port, ms, percentile, server

BROWSER_USERS, API_USERS, TRAININGS = 12, 4, 4
WEB_WORKERS = 3  # as the Dockerfile
INPUTS = 2000  # per user; the 4 models train on all of them
CONCEPTS = ("spam", "ham", "promo")
CLICKS_PER_PAGE = 10  # label saves on an explorer page before moving to the next
POLL = 1.0  # seconds: the model page polls a training's status every second
GRACE = 300  # seconds for the trainings under way when the time is up to finish
PASSWORD = "load-benchmark-password"
LABEL_VALUES = {"1": 1, "0": 0, "none": None}

Labels = dict[str, int]  # concept ID -> 1 (positive) or 0 (negative)


@dataclass
class Account:
    """A user, their app and what their client knows of its labels."""

    username: str
    token: str
    labels: dict[int, Labels]  # input ID -> the labels last acknowledged by the server
    uncertain: set[int] = field(default_factory=set)  # inputs whose last save got no answer
    cookies: dict[str, str] = field(default_factory=dict)
    csrf: str = ""


@dataclass
class Training:
    number: int
    status: int
    seconds: float  # the user's view: click to the poll that saw it finished
    queued: float  # the server's: created to started
    ran: float  # started to finished
    embed: float  # of which reading (or computing) the embeddings
    fit: float  # and fitting the head
    in_window: bool


@dataclass
class Tally:
    """What every client saw, shared by the threads."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    until: float = float("inf")  # requests sent after this (the end of the run) are not timed
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    conflicts: int = 0
    saved: int = 0  # label saves the server acknowledged
    mismatches: list[str] = field(default_factory=list)
    trainings: list[Training] = field(default_factory=list)
    running: list[int] = field(default_factory=list)  # trainings under way, sampled each second

    def timed(self, kind: str, sent: float, seconds: float) -> None:
        if sent <= self.until:
            with self.lock:
                self.latencies.setdefault(kind, []).append(seconds)

    def error(self, message: str) -> None:
        with self.lock:
            self.errors.append(message)

    def mismatch(self, message: str) -> None:
        with self.lock:
            self.mismatches.append(message)


class Client:
    """One user's HTTP client: their cookies, and each request timed into the tally."""

    def __init__(self, base: str, account: Account, tally: Tally) -> None:
        parts = urllib.parse.urlsplit(base)
        self.base, self.host, self.port = base, parts.hostname, parts.port
        self.account, self.tally = account, tally

    def send(
        self, kind: str, method: str, path: str, body: bytes = b"", headers=None, ok=(200,)
    ) -> str | None:
        """The answer's body, or None (and an error in the tally) if its status is not one
        of `ok`."""
        headers = dict(headers or {})
        cookies = self.account.cookies
        if cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        connection = http.client.HTTPConnection(self.host, self.port, timeout=60)
        sent, started = time.monotonic(), time.perf_counter()
        try:
            connection.request(method, path, body=body or None, headers=headers)
            answer = connection.getresponse()
            text = answer.read().decode()
        except (OSError, http.client.HTTPException) as exc:
            self.tally.error(f"{kind}: {exc.__class__.__name__}: {exc}")
            return None
        finally:
            connection.close()
        self.tally.timed(kind, sent, time.perf_counter() - started)
        for header in answer.msg.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            cookies[name.strip()] = rest.split(";", 1)[0]
        if answer.status not in ok:
            self.tally.error(f"{kind}: HTTP {answer.status} for {method} {path}")
            return None
        return text

    def form(self, kind: str, path: str, fields: dict[str, str], headers=None, ok=(200,)):
        """Post a form as the browser does, with the CSRF cookie and its origin."""
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Origin": self.base,
            "Referer": self.base + path,
            **(headers or {}),
        }
        body = urllib.parse.urlencode(fields).encode()
        return self.send(kind, "POST", path, body, headers, ok)

    def api(self, kind: str, method: str, path: str, data=None, ok=(200,)) -> dict | None:
        headers = {"Authorization": f"Token {self.account.token}"}
        body = b""
        if data is not None:
            headers["Content-Type"] = "application/json"
            body = json.dumps(data).encode()
        answer = self.send(kind, method, "/api/v1" + path, body, headers, ok)
        return None if answer is None else json.loads(answer)


@dataclass
class Form:
    action: str
    fields: dict[str, str] = field(default_factory=dict)


@dataclass
class Row:
    """An input row of the explorer: its label forms and the labels it shows."""

    pk: int
    conflict: bool
    saved: bool = False
    forms: list[Form] = field(default_factory=list)
    labels: Labels = field(default_factory=dict)


class PageParser(HTMLParser):
    """Reads what a browser would use from a page or fragment: the CSRF header on <body>,
    the forms with every field they would send, and the explorer's input rows."""

    def __init__(self) -> None:
        super().__init__()
        self.csrf = ""
        self.forms: list[Form] = []
        self.rows: dict[int, Row] = {}
        self.row: Row | None = None
        self.form: Form | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {name: value or "" for name, value in attrs}
        classes = attr.get("class", "").split()
        if tag == "body" and "hx-headers" in attr:
            self.csrf = json.loads(attr["hx-headers"]).get("x-csrftoken", "")
        elif tag == "li" and "input-row" in classes:
            pk = int(attr["id"].removeprefix("input-"))
            self.row = self.rows[pk] = Row(pk, conflict="conflict" in classes)
        elif tag == "form":
            self.form = Form(attr.get("hx-post") or attr.get("action", ""))
            self.forms.append(self.form)
            if self.row is not None:
                self.row.forms.append(self.form)
        elif tag == "input" and self.form is not None and "name" in attr and "form" not in attr:
            if attr.get("type") not in ("checkbox", "radio") or "checked" in attr:
                self.form.fields[attr["name"]] = attr.get("value", "")
        elif self.row is None:
            return
        elif tag == "button" and "chip" in classes:
            self.row.labels[attr["data-concept"]] = 1 if "positive" in classes else 0
        elif tag == "span" and "saved" in classes:
            self.row.saved = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.form = None
        elif tag == "li":
            self.row = None


def parse(html: str) -> PageParser:
    parser = PageParser()
    parser.feed(html)
    parser.close()
    return parser


def prepare(users: int, trained: int) -> list[Account]:
    """Users with an app each (the same texts, some labeled), an API token, and for the
    first `trained` users a model set up on version 1 of their dataset."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password

    from portal import versions
    from portal.models import (
        Annotation,
        ApiToken,
        App,
        Concept,
        Dataset,
        DatasetVersion,
        Input,
        TrainableModel,
        default_params,
        text_hash,
    )

    User = get_user_model()
    User.objects.filter(username__startswith="load-").delete()
    texts = sentences(INPUTS, seed=11)
    password = make_password(PASSWORD)  # hashed once: the same password for everybody
    accounts = []
    for n in range(users):
        user = User.objects.create(username=f"load-{n}", password=password)
        app = App.objects.create(owner=user, slug="load")
        concepts = [Concept.objects.create(app=app, slug=slug, name=slug) for slug in CONCEPTS]
        dataset = Dataset.objects.create(app=app, slug="texts")
        items = Input.objects.bulk_create(
            Input(app=app, text=text, text_hash=text_hash(text)) for text in texts
        )
        member = Dataset.inputs.through
        member.objects.bulk_create(member(dataset=dataset, input=item) for item in items)
        labels: dict[int, Labels] = {}
        annotations = []
        for i, item in enumerate(items):
            pairs = [(concepts[i % 3], 1)]
            if i % 4 == 0:
                pairs.append((concepts[(i + 1) % 3], 0))
            labels[item.pk] = {concept.slug: value for concept, value in pairs}
            annotations += [
                Annotation(input=item, concept=c, value=v, author=user) for c, v in pairs
            ]
        Annotation.objects.bulk_create(annotations)
        if n < trained:
            version = DatasetVersion.objects.create(dataset=dataset, number=1)
            versions.snapshot(version.pk)
            params = default_params()
            params.update(dataset_id="texts", dataset_version_id="1", concepts=list(CONCEPTS))
            TrainableModel.objects.create(app=app, slug="load", params=params)
        _, key = ApiToken.issue(user, "load")
        accounts.append(Account(user.username, key, labels))
    return accounts


@contextmanager
def redis_server(folder: Path) -> Iterator[str]:
    """A Redis of our own on a free port, gone afterwards."""
    import redis

    program = shutil.which("redis-server")
    if program is None:
        raise SystemExit("The load benchmark needs redis-server (apt install redis-server).")
    port = free_port()
    command = [program, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    process = subprocess.Popen(
        [*command, "--appendonly", "no", "--dir", str(folder)], stdout=subprocess.DEVNULL
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield url
    finally:
        client.close()
        process.terminate()
        process.wait(timeout=10)


@contextmanager
def celery_worker(log: Path) -> Iterator[None]:
    """A real worker process with one child per concurrent training."""
    command = [sys.executable, "-m", "celery", "-A", "portal", "worker", "--pool", "prefork"]
    options = ["--concurrency", str(TRAININGS), "--loglevel", "WARNING"]
    with log.open("w") as out:
        process = subprocess.Popen(
            [*command, *options, "--without-mingle", "--without-gossip"],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@contextmanager
def production(folder: Path) -> Iterator[str]:
    """The web server and the worker, as in production, on the benchmark's database."""
    with redis_server(folder) as broker:
        env = {
            "REDIS_URL": broker,
            "PORTAL_DATA_DIR": str(folder),
            "DJANGO_DEBUG": "False",
            "HF_HUB_OFFLINE": "1",
        }
        with mock.patch.dict(os.environ, env):
            # Production settings name static files by the manifest collectstatic writes.
            subprocess.run(
                [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
                cwd=ROOT,
                check=True,
            )
            with celery_worker(folder / "worker.log"), server(workers=WEB_WORKERS) as base:
                yield base


def wait_until_up(base: str) -> None:
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{base}/accounts/login/", timeout=5) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("the web server did not start within 120 s")
        time.sleep(0.5)


def log_in(client: Client) -> None:
    """The login form, then the explorer's first page (whose <body> has the CSRF token)."""
    page = client.send("login page", "GET", "/accounts/login/") or ""
    forms = parse(page).forms
    token = next((f.fields["csrfmiddlewaretoken"] for f in forms if "username" in f.fields), "")
    fields = {"username": client.account.username, "password": PASSWORD, "next": ""}
    client.form("login", "/accounts/login/", {**fields, "csrfmiddlewaretoken": token}, ok=(302,))
    page = client.send("explorer page", "GET", "/apps/load/inputs/") or ""
    client.account.csrf = parse(page).csrf
    if not client.account.csrf:
        problems = "; ".join(client.tally.errors) or "no CSRF token on the explorer page"
        raise RuntimeError(f"{client.account.username} could not sign in: {problems}")


def check_rows(tally: Tally, account: Account, shown: dict[int, Labels], where: str) -> None:
    for pk, labels in shown.items():
        if pk not in account.uncertain and labels != account.labels[pk]:
            tally.mismatch(f"{account.username} {where}: input {pk} shows {labels}")


def label_in_browser(client: Client, stop: float, rng: random.Random) -> None:
    """Page through the explorer, clicking label chips and adding concepts, as htmx posts
    the row's forms."""
    account, tally = client.account, client.tally
    pages = -(-INPUTS // 50)
    number = rng.randrange(pages) + 1
    while time.monotonic() < stop:
        url = f"/apps/load/inputs/?page={number}"
        page = client.send("explorer page", "GET", url, headers={"HX-Request": "true"})
        number = number % pages + 1
        if page is None:
            continue
        rows = parse(page).rows
        check_rows(tally, account, {pk: row.labels for pk, row in rows.items()}, "explorer page")
        for _ in range(CLICKS_PER_PAGE):
            if time.monotonic() >= stop or not rows:
                break
            row = rows[rng.choice(list(rows))]
            form = rng.choice(row.forms)
            fields = dict(form.fields)
            if not fields.get("concept"):  # the "+ concept" box: type a concept's ID
                fields["concept"] = rng.choice(CONCEPTS)
            headers = {
                "HX-Request": "true",
                "HX-Current-URL": client.base + url,
                "HX-Target": f"input-{row.pk}",
                "X-CSRFToken": account.csrf,
            }
            answer = client.form("label save, explorer", form.action, fields, headers)
            shown = parse(answer).rows.get(row.pk) if answer else None
            if shown is None:
                account.uncertain.add(row.pk)
                rows.pop(row.pk)
                continue
            rows[row.pk] = shown
            if shown.saved:
                with tally.lock:
                    tally.saved += 1
                labels = dict(account.labels[row.pk])
                value = LABEL_VALUES[fields["value"]]
                if value is None:
                    labels.pop(fields["concept"], None)
                else:
                    labels[fields["concept"]] = value
                account.labels[row.pk] = labels
                check_rows(tally, account, {row.pk: shown.labels}, "saved row")
            elif shown.conflict:
                with tally.lock:
                    tally.conflicts += 1
            else:
                tally.error(f"label save, explorer: input {row.pk}: neither saved nor refused")


def label_through_api(client: Client, stop: float, rng: random.Random) -> None:
    """Page through the API's input list, replacing inputs' labels with PATCH."""
    account, tally = client.account, client.tally
    pages = -(-INPUTS // 50)
    number = rng.randrange(pages) + 1
    while time.monotonic() < stop:
        page = client.api("API inputs page", "GET", f"/apps/load/inputs?page={number}")
        number = number % pages + 1
        if page is None:
            continue
        items = {item["id"]: item for item in page["inputs"]}
        check_rows(tally, account, {pk: _labels(item) for pk, item in items.items()}, "API page")
        for _ in range(CLICKS_PER_PAGE):
            if time.monotonic() >= stop or not items:
                break
            item = items[rng.choice(list(items))]
            wanted = {c: v for c in CONCEPTS if (v := rng.choice((1, 0, None))) is not None}
            body = {
                "concepts": [c for c, v in wanted.items() if v == 1],
                "negative_concepts": [c for c, v in wanted.items() if v == 0],
                "revision": item["revision"],
            }
            path = f"/apps/load/inputs/{item['id']}"
            answer = client.api("label save, API", "PATCH", path, body, ok=(200, 409))
            if answer is None:
                account.uncertain.add(item["id"])
                items.pop(item["id"])
            elif "revision" not in answer:  # 409: somebody else changed it
                with tally.lock:
                    tally.conflicts += 1
                break
            else:
                with tally.lock:
                    tally.saved += 1
                account.labels[item["id"]] = wanted
                items[item["id"]] = answer
                check_rows(tally, account, {item["id"]: _labels(answer)}, "PATCH answer")


def _labels(item: dict) -> Labels:
    return {**dict.fromkeys(item["negative_concepts"], 0), **dict.fromkeys(item["concepts"], 1)}


def train_once(client: Client, stop: float) -> Training | None:
    """Start a training and poll it until it is finished, as the model page does."""
    from portal.models import ModelVersion

    finished = (ModelVersion.Status.TRAINED, ModelVersion.Status.FAILED)
    versions = "/apps/load/models/load/versions"
    version = client.api("training start", "POST", versions, ok=(202,))
    if version is None:
        time.sleep(POLL)
        return None
    clicked = time.perf_counter()
    url = f"{versions}/{version['id']}"
    while version is None or version["status"]["code"] not in finished:
        if time.monotonic() > stop + GRACE:
            client.tally.error(f"training {url} did not finish within {GRACE} s")
            return None
        time.sleep(POLL)
        version = client.api("training status", "GET", url)
    times = {
        k: datetime.fromisoformat(v)
        for k, v in version["timings"].items()
        if k in ("created", "started", "finished") and v
    }
    started = times.get("started", times["finished"])  # a version failed before it started
    training = Training(
        number=int(version["id"]),
        status=version["status"]["code"],
        seconds=time.perf_counter() - clicked,
        queued=(started - times["created"]).total_seconds(),
        ran=(times["finished"] - started).total_seconds(),
        embed=version["timings"]["embed_seconds"] or 0.0,
        fit=version["timings"]["fit_seconds"] or 0.0,
        in_window=time.monotonic() <= stop,
    )
    with client.tally.lock:
        client.tally.trainings.append(training)
    return training


def keep_training(client: Client, stop: float) -> None:
    """Train the model again as soon as its last version is finished, until `stop`."""
    while time.monotonic() < stop:
        train_once(client, stop)


def sample_trainings(tally: Tally, stop: float) -> None:
    """Count the versions being trained, once a second."""
    from django.db import connection

    from portal.models import ModelVersion

    try:
        while time.monotonic() + 1 < stop:
            time.sleep(1)
            running = ModelVersion.objects.filter(status=ModelVersion.Status.TRAINING).count()
            tally.running.append(running)
    finally:
        connection.close()


@dataclass
class Count:
    expected: int = 0  # labels acknowledged, on inputs whose state is known
    stored: int = 0  # labels in the database, on the same inputs
    lost: int = 0  # acknowledged, but missing or different in the database
    unexpected: int = 0  # in the database, but no client was told it was saved
    uncertain: int = 0  # inputs whose last save got no answer


def count_labels(accounts: list[Account]) -> Count:
    """Compare the database's labels with what the clients were told."""
    from portal.models import Annotation

    stored: dict[int, Labels] = {}
    rows = Annotation.objects.filter(input__app__owner__username__startswith="load-")
    for input_id, slug, value in rows.values_list("input_id", "concept__slug", "value"):
        stored.setdefault(input_id, {})[slug] = value
    count = Count()
    for account in accounts:
        count.uncertain += len(account.uncertain)
        for pk, labels in account.labels.items():
            if pk in account.uncertain:
                continue
            have = stored.get(pk, {})
            count.expected += len(labels)
            count.stored += len(have)
            count.lost += sum(have.get(c) != v for c, v in labels.items())
            count.unexpected += sum(labels.get(c) != v for c, v in have.items())
    return count


def warm_up(clients: list[Client]) -> None:
    """Train each model once before the clock starts: the first training embeds the texts
    and the Enrich corpus into the cache, as the embedding jobs would after an upload."""
    from portal.models import ModelVersion

    results = [train_once(clients[0], time.monotonic())]
    threads = [
        threading.Thread(target=lambda c=c: results.append(train_once(c, time.monotonic())))
        for c in clients[1:]
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if any(r is None or r.status != ModelVersion.Status.TRAINED for r in results):
        raise RuntimeError(f"the warm-up trainings failed: {clients[0].tally.errors}")


def run(seconds: float) -> list[str]:
    """Set up, load the app for `seconds`, count the labels: the report's section."""
    from django.db import connection

    before = os.getloadavg()
    accounts = prepare(BROWSER_USERS + API_USERS, TRAININGS)
    setup, tally = Tally(), Tally()
    with tempfile.TemporaryDirectory(prefix="portal-load-") as folder:
        with production(Path(folder)) as base:
            wait_until_up(base)
            clients = [Client(base, account, setup) for account in accounts]
            for client in clients[:BROWSER_USERS]:
                log_in(client)
            warm_up(clients[:TRAININGS])
            if setup.errors:
                raise RuntimeError(f"setting up failed: {setup.errors}")
            for client in clients:
                client.tally = tally
            at_start = os.getloadavg()
            started = time.monotonic()
            tally.until = stop = started + seconds
            users = [
                threading.Thread(target=label_in_browser, args=(c, stop, random.Random(n)))
                for n, c in enumerate(clients[:BROWSER_USERS])
            ] + [
                threading.Thread(target=label_through_api, args=(c, stop, random.Random(-n)))
                for n, c in enumerate(clients[BROWSER_USERS:], start=1)
            ]
            trainers = [
                threading.Thread(target=keep_training, args=(c, stop)) for c in clients[:TRAININGS]
            ]
            trainers.append(threading.Thread(target=sample_trainings, args=(tally, stop)))
            for thread in users + trainers:
                thread.start()
            for thread in users:
                thread.join()
            elapsed, at_end = time.monotonic() - started, os.getloadavg()
            for thread in trainers:
                thread.join()
        worker_errors = sum(
            "ERROR" in line for line in (Path(folder) / "worker.log").read_text().splitlines()
        )
    count = count_labels(accounts)
    loads = [", ".join(f"{v:.2f}" for v in values) for values in (before, at_start, at_end)]
    return report(tally, count, elapsed, worker_errors, connection.vendor, loads)


def _row(name: str, values: list[float], elapsed: float) -> str:
    if not values:
        return f"| {name} | 0 | 0 | – | – | – | – |"
    shares = [percentile(values, share) for share in (0.5, 0.95, 0.99)]
    timing = " | ".join(ms(value) for value in [*shares, max(values)])
    return f"| {name} | {len(values):,} | {len(values) / elapsed:.1f} | {timing} |"


def _seconds(values: list[float]) -> str:
    if not values:
        return "–"
    return f"{statistics.median(values):.1f} s / {max(values):.1f} s"


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def report(
    tally: Tally, count: Count, elapsed: float, worker_errors: int, vendor: str, loads: list[str]
) -> list[str]:
    from portal.models import ModelVersion

    times = tally.latencies
    browser, api = times.get("label save, explorer", []), times.get("label save, API", [])
    runs = tally.trainings
    done = [t for t in runs if t.in_window]
    trained = [t for t in runs if t.status == ModelVersion.Status.TRAINED]
    running = sorted(tally.running) or [0]
    every = [value for values in times.values() for value in values]
    errors = len(tally.errors)
    kinds = sorted({e.split(":", 1)[0] for e in tally.errors})
    lines = [
        "## Load",
        "",
        f"One run of {elapsed:.0f} s on {datetime.now():%Y-%m-%d}, database {vendor}: a run"
        " under this load is itself the measurement, so there is no median of several runs."
        f" Gunicorn with {WEB_WORKERS} sync workers and production settings (DEBUG off,"
        f" collected static files); a Celery worker process with {TRAININGS} children"
        " (prefork) on a Redis server of its own; the clients are threads of one Python"
        f" process. Everything shares the machine's {os.cpu_count()} cores. Load average"
        f" (1, 5, 15 min): {loads[0]} before setting up, {loads[1]} at the start of the run,"
        f" {loads[2]} at its end.",
        "",
        f"- {BROWSER_USERS + API_USERS} users, each with an app of {INPUTS:,} inputs and"
        f" {len(CONCEPTS)} concepts, label their own inputs without pausing."
        f" {BROWSER_USERS} use the inputs explorer: signed in through the login form, each"
        " click posts the row's label form as htmx does (CSRF cookie and header), a chip"
        " click or a concept typed into the row's box;"
        f" {CLICKS_PER_PAGE} clicks on a page of 50 rows, then the next page as an htmx GET."
        f" {API_USERS} use the API with a token: PATCH of an input's positive and negative"
        f" concepts with its revision, {CLICKS_PER_PAGE} per page of the input list.",
        f"- {TRAININGS} trainings at once: {TRAININGS} of the users have a model on version 1"
        f" of their dataset ({INPUTS:,} labeled inputs, default settings; a warm-up training"
        " before the run filled the embedding cache), trained again through the API as soon"
        f" as its last version is finished, polled every {POLL:.0f} s as the model page does.",
        "- Afterwards every input's labels in the database are compared with the ones its"
        " user's client was told were saved.",
        "",
        "| requests | count | per second | p50 | p95 | p99 | max |",
        "|---|---|---|---|---|---|---|",
        _row("Label saves, explorer (htmx POST)", browser, elapsed),
        _row("Label saves, API (PATCH)", api, elapsed),
        _row("**Label saves, all**", browser + api, elapsed),
        _row("Explorer pages (htmx GET, 50 rows)", times.get("explorer page", []), elapsed),
        _row("API input pages (GET, 50 inputs)", times.get("API inputs page", []), elapsed),
        _row("Training starts (POST)", times.get("training start", []), elapsed),
        _row("Training status polls (GET)", times.get("training status", []), elapsed),
        _row("All requests", every, elapsed),
        "",
        "| result | figure |",
        "|---|---|",
        f"| Errors: answers other than the expected status, requests that failed"
        f" | {errors}{' (' + ', '.join(kinds) + ')' if kinds else ''} (target 0:"
        f" {_met(errors == 0)}) |",
        f"| Labels lost: acknowledged, then missing or different in the database"
        f" | {count.lost} of {count.expected:,} (target 0: {_met(count.lost == 0)}) |",
        f"| Labels in the database that no client was told were saved | {count.unexpected}"
        f" ({count.stored:,} stored in all) |",
        f"| Label saves acknowledged | {tally.saved:,} |",
        f"| Inputs whose last save got no answer (left out of the counts) | {count.uncertain} |",
        f"| Pages and answers showing labels other than the acknowledged ones"
        f" | {len(tally.mismatches)} |",
        f"| Saves refused as conflicts (each input has one writer: 0 expected)"
        f" | {tally.conflicts} |",
        f"| Trainings started during the run | {len(runs)}: {len(trained)} trained,"
        f" {len(runs) - len(trained)} failed; {len(done)} of them finished before the end |",
        f"| Training, click to seen trained: median / max"
        f" | {_seconds([t.seconds for t in runs])} |",
        f"| Training on the worker, started to finished: median / max"
        f" | {_seconds([t.ran for t in runs])} |",
        f"| of which embeddings (from the cache) / fitting the head: median / max"
        f" | {_seconds([t.embed for t in runs])}; {_seconds([t.fit for t in runs])} |",
        f"| Training queued, created to started: median / max"
        f" | {_seconds([t.queued for t in runs])} |",
        f"| Versions training at once, sampled every second: min / median / max"
        f" | {running[0]} / {statistics.median(running):.0f} / {running[-1]} |",
        f"| Worker log lines with ERROR | {worker_errors} |",
        "",
    ]
    for name, found in (("Errors", tally.errors), ("Labels shown", tally.mismatches)):
        if found:
            lines += [f"{name} (first 3 of {len(found)}): " + "; ".join(found[:3]), ""]
    return lines

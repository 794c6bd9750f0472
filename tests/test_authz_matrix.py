"""Authorization across every URL: another user's IDs answer 404 and change nothing.

The routes come from Django's URL resolver, so a new route is checked as soon as it
exists: each URL parameter is known by its place in the path (`SHAPES`), and this test
fails on a parameter it doesn't know or a route without parameters that isn't listed in
`NO_ID`. `test_csrf.py` and `test_safe_methods.py` walk the same routes.
"""

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import unquote_plus, urlencode

import pytest
from django.apps import apps
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.utils.regex_helper import normalize

from portal import batch, evaluating, versions
from portal.models import (
    ApiToken,
    App,
    Concept,
    Dataset,
    DatasetVersion,
    Evaluation,
    ImportJob,
    Input,
    ModelVersion,
    PredictionJob,
    TrainableModel,
    default_params,
    text_hash,
)
from portal.views.explorer import BULK_ACTIONS
from tests.test_api_ownership import BODIES, fill
from tests.test_evaluations import HELD_OUT, evaluated, make_version
from tests.test_models_views import train_data

HX = {"HX-Request": "true"}
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
UNSAFE = ("POST", "PUT", "PATCH", "DELETE")

# What each URL parameter names, by its place in the path: "<parent>/segment/<name>"
# (or "segment/<name>" for the first parameter). A new route fails `test_every_route_is_
# covered` until its parameters are here.
SHAPES = {
    "apps/<app_id>": "app",
    "<app_id>/concepts/<concept_id>": "concept",
    "<app_id>/datasets/<dataset_id>": "dataset",
    "<dataset_id>/versions/<number>": "dataset_version",
    "<dataset_id>/versions/<version_id>": "dataset_version",
    "<number>/export.<fmt>": "export_format",
    "<app_id>/inputs/<input_pk>": "input",
    "<app_id>/inputs/<input_id>": "input",
    "<app_id>/quality/similar/<input_pk>": "input",
    "<app_id>/quality/suspicious/<input_pk>": "input",
    "<app_id>/inputs/imports/<job_pk>": "import_job",
    "<app_id>/inputs/jobs/<job_id>": "import_job",
    "<app_id>/models/<model_id>": "model",
    "<model_id>/versions/<number>": "model_version",
    "<model_id>/versions/<version_id>": "model_version",
    "<model_id>/batch/<job_pk>": "prediction_job",
    "<app_id>/evaluations/<pk>": "evaluation",
    "<version_id>/evaluations/<eval_pk>": "evaluation",
    "api-tokens/<token_id>": "token",
}
# Parameters that aren't IDs of anything a user owns.
NOT_IDS = {"export_format"}
# Kinds numbered within their parent (version 1 of each dataset): only the parent tells
# one user's from another's, so swapping them alone means nothing.
NUMBERED = {"dataset_version", "model_version"}

# Routes without any ID, each reviewed: what it lists is the signed-in user's own.
NO_ID = {
    "portal:home",
    "portal:app-create",
    "portal:api-tokens",
    "api:openapi-json",
    "api:openapi-view",
    "api:api-root",
    "api:api-apps",
    "api:api-model-types",
    "signup",
    "login",
    "logout",
    "password_change",
    "password_change_done",
    "password_reset",
    "healthz",
}
# Django's admin: staff only (test_the_admin_is_for_staff_only).
ADMIN_PREFIX = "admin/"

# Form fields a page's POST may read, aimed at the objects in the URL; see `form_data`.
ROUTE_FORMS = {
    **{
        f"portal:label-next-{step}": lambda w: {
            "dataset": w.dataset.slug,
            "input": str(w.input.pk),
            "concepts": [w.concept.slug],
            "retrain": "10",
        }
        for step in ("accept", "skip", "undo", "retrain")
    },
    "portal:model-evaluate": lambda w: {"dataset_version": str(w.dataset_version.pk)},
    "portal:input-similar-label": lambda w: {"action": "label"},
    "portal:suspicious-fix": lambda w: {"change": f"{w.concept.slug}:0"},
    "portal:model-setup": lambda w: train_data(dataset_version=str(w.dataset_version.number)),
    "portal:model-try-add": lambda w: {"dataset": w.dataset.slug, "concepts": [w.concept.slug]},
}
# Query strings a page needs to show something, aimed at the objects in the URL.
ROUTE_QUERIES = {
    "portal:label-next": lambda w: f"dataset={w.dataset.slug}",
    "portal:evaluation-selection": lambda w: f"actual={w.concept.slug}&predicted={w.concept.slug}",
    "portal:evaluations-compare": lambda w: f"ids={w.evaluation.pk}&ids={w.evaluation.pk}",
    "portal:model-setup": lambda w: f"dataset={w.dataset.slug}",
}


@dataclass
class Route:
    name: str
    route: str  # as written in the URL patterns, e.g. "apps/<str:app_id>/"
    template: str  # "apps/%(app_id)s/"
    kinds: dict[str, str]  # URL parameter -> what it names ("" when unknown)
    view: Callable

    @property
    def is_api(self) -> bool:
        return self.route.startswith("api/")

    @property
    def is_admin(self) -> bool:
        return self.route.startswith(ADMIN_PREFIX)

    @property
    def ids(self) -> set[str]:
        return {kind for kind in self.kinds.values() if kind not in NOT_IDS}

    def url(self, values: dict[str, str]) -> str:
        return "/" + self.template % {name: values[kind] for name, kind in self.kinds.items()}

    def __str__(self) -> str:
        return f"{self.name} ({self.route})"


def shapes(route: str) -> list[tuple[str, str]]:
    """(parameter, shape) for each parameter of a route, e.g. ("number",
    "<dataset_id>/versions/<number>"); the first one's shape starts at the segment before."""
    plain = re.sub(r"<(?:\w+:)?(\w+)>", r"<\1>", route)
    found, parent, start = [], None, 0
    for match in re.finditer(r"<(\w+)>", plain):
        name, between = match.group(1), plain[start : match.start()]
        if parent is None:
            found.append((name, between.rstrip("/").rsplit("/", 1)[-1] + f"/<{name}>"))
        else:
            found.append((name, f"<{parent}>{between}<{name}>"))
        parent, start = name, match.end()
    return found


def routes() -> list[Route]:
    """Every route of the site, once each, in URL order."""
    found: dict[str, Route] = {}

    def walk(resolver: URLResolver, prefix: str, template: str, namespace: str) -> None:
        for pattern in resolver.url_patterns:
            route = prefix + str(pattern.pattern)
            url = template + normalize(pattern.pattern.regex.pattern)[0][0]
            if isinstance(pattern, URLResolver):
                inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
                walk(pattern, route, url, inner)
            elif isinstance(pattern, URLPattern):
                kinds = {name: SHAPES.get(shape, "") for name, shape in shapes(route)}
                name = f"{namespace}{pattern.name or ''}"
                found.setdefault(route, Route(name, route, url, kinds, pattern.callback))

    walk(get_resolver(), "", "", "")
    return list(found.values())


def id_routes() -> list[Route]:
    """The routes that name a user's objects: the ones the authorization matrix walks."""
    return [r for r in routes() if r.ids and not r.is_admin and "" not in r.ids]


# The objects of a user


@dataclass
class World:
    """One of every kind of object a user owns, with what fills each URL parameter."""

    user: User
    app: App
    concept: Concept
    dataset: Dataset
    dataset_version: DatasetVersion
    input: Input
    import_job: ImportJob
    model: TrainableModel
    model_version: ModelVersion
    prediction_job: PredictionJob
    evaluation: Evaluation
    token: ApiToken
    key: str

    def values(self) -> dict[str, str]:
        return {
            "app": self.app.slug,
            "concept": self.concept.slug,
            "dataset": self.dataset.slug,
            "dataset_version": str(self.dataset_version.number),
            "export_format": "csv",
            "input": str(self.input.pk),
            "import_job": str(self.import_job.pk),
            "model": self.model.slug,
            "model_version": str(self.model_version.number),
            "prediction_job": str(self.prediction_job.pk),
            "evaluation": str(self.evaluation.pk),
            "token": str(self.token.pk),
        }

    def api_ids(self) -> dict[str, str]:
        """The values test_api_ownership's request bodies refer to."""
        return {"eval_pk": str(self.evaluation.pk)}


def alice_world(trained_model: TrainableModel, alice) -> World:
    """Alice's trained "detector" with everything around it finished: a READY dataset
    version, an evaluation with results, a done batch prediction, an import job, a token."""
    app = trained_model.app
    version = trained_model.versions.get()
    dataset_version = version.dataset_version
    evaluation = evaluated(version, dataset_version)
    job = PredictionJob.objects.create(
        model_version=version, user=alice, filename="batch.csv", data=b"text\nWin a prize now\n"
    )
    batch.run(job.pk)
    job.refresh_from_db()
    assert job.status == PredictionJob.Status.DONE, job.errors
    import_job = ImportJob.objects.create(
        app=app, user=alice, filename="later.csv", data=b"text\nlater\n"
    )
    token, key = ApiToken.issue(alice, "laptop")
    return World(
        user=alice,
        app=app,
        concept=Concept.objects.get(app=app, slug="spam"),
        dataset=dataset_version.dataset,
        dataset_version=dataset_version,
        input=Input.objects.filter(app=app).order_by("pk").first(),
        import_job=import_job,
        model=trained_model,
        model_version=version,
        prediction_job=job,
        evaluation=evaluation,
        token=token,
        key=key,
    )


def bob_world(bob) -> World:
    """Bob's objects, under IDs of his own; his model version and evaluation are rows
    without results (they only need to exist)."""
    app = App.objects.create(owner=bob, slug="bob-app", description="Bob's app")
    dataset_version = make_version(app, "bob-dataset", [("Bob's text", "bob-concept")])
    model = TrainableModel.objects.create(app=app, slug="bob-model", params=default_params())
    model_version = ModelVersion.objects.create(
        model=model, number=1, params=model.params, status=ModelVersion.Status.FAILED
    )
    token, key = ApiToken.issue(bob, "bob's token")
    return World(
        user=bob,
        app=app,
        concept=Concept.objects.get(app=app),
        dataset=dataset_version.dataset,
        dataset_version=dataset_version,
        input=Input.objects.get(app=app),
        import_job=ImportJob.objects.create(app=app, user=bob, filename="b.csv", data=b"text\n"),
        model=model,
        model_version=model_version,
        prediction_job=PredictionJob.objects.create(
            model_version=model_version, user=bob, filename="b.csv", data=b"text\n"
        ),
        evaluation=Evaluation.objects.create(
            model_version=model_version,
            dataset_version=dataset_version,
            status=Evaluation.Status.FAILED,
        ),
        token=token,
        key=key,
    )


@pytest.fixture
def alice_objects(trained_model, alice) -> World:
    return alice_world(trained_model, alice)


@pytest.fixture
def bob_objects(bob) -> World:
    return bob_world(bob)


# Requests


def snapshot() -> dict[str, list[tuple]]:
    """Every row of every portal table (many-to-many tables too)."""
    tables = {}
    for model in apps.get_app_config("portal").get_models(include_auto_created=True):
        rows = model._base_manager.order_by("pk").values_list()
        tables[model._meta.db_table] = [
            tuple(bytes(v) if isinstance(v, memoryview) else v for v in row) for row in rows
        ]
    return tables


def changed_tables(before: dict[str, list[tuple]]) -> list[str]:
    after = snapshot()
    return [table for table in before if before[table] != after[table]]


@contextmanager
def rolled_back() -> Iterator[None]:
    """Whatever happens inside is undone, so each request starts from the same rows."""
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


def form_data(route: Route, world: World, fields: dict | None = None) -> dict:
    """Every field a page's POST may read, aimed at `world`'s objects: a valid request
    for their owner, an attack for anyone else."""
    data = {
        **train_data(),
        "slug": "intruder",
        "name": "Intruder",
        "description": "written by an intruder",
        "confirm": world.app.slug,
        "concept": world.concept.slug,
        "value": "1",
        "revision": str(world.input.revision),
        "action": "delete",
        "ids": [str(world.input.pk)],
        "bulk_concept": world.concept.slug,
        "bulk_dataset": world.dataset.slug,
        "mode": "text",
        "text": "an intruder's text",
        "datasets": [world.dataset.slug],
        "version": str(world.model_version.number),
        "target_precision": "0.5",
        f"threshold-{world.concept.slug}": "0.4",
        "file": SimpleUploadedFile("intruder.csv", b"text\nan intruder's text\n", "text/csv"),
    }
    data.update(ROUTE_FORMS.get(route.name, lambda w: {})(world))
    return {**data, **(fields or {})}


def api_body(route: Route, method: str, world: World) -> str:
    """test_api_ownership's valid body for the operation, or an empty object."""
    path = re.sub(r"<(\w+)>", r"{\1}", route.route.removeprefix("api/v1"))
    return json.dumps(fill(BODIES.get((method.lower(), path), {}), world.api_ids()))


def send(
    client: Client,
    route: Route,
    method: str,
    url: str,
    world: World,
    headers: dict | None = None,
    fields: dict | None = None,
):
    """`method` on `url`, with a body that `route`'s view would accept from `world`'s owner."""
    headers = headers or {}
    if route.name in ROUTE_QUERIES:
        url += ("&" if "?" in url else "?") + ROUTE_QUERIES[route.name](world)
    if method in ("GET", "HEAD"):
        return client.generic(method, url, headers=headers)
    if route.is_api:
        body = api_body(route, method, world)
        return client.generic(method, url, body, content_type="application/json", headers=headers)
    if method == "POST":
        return client.post(url, form_data(route, world, fields), headers=headers)
    return client.generic(method, url, headers=headers)


def accepted_methods(
    client: Client, route: Route, world: World, url: str | None = None
) -> list[str]:
    """The methods the route answers for the owner (anything but 405), found by asking."""
    url = url or route.url(world.values())
    accepted = []
    for method in METHODS:
        with rolled_back():
            if send(client, route, method, url, world).status_code != 405:
                accepted.append(method)
    return accepted


def attempt(client: Client, route: Route, method: str, url: str, world: World, **kw):
    """The response to the request and the tables it changed (it is then undone)."""
    before = snapshot()
    with rolled_back():
        response = send(client, route, method, url, world, **kw)
        if response.status_code == 500:
            return response, ["(a server error: the transaction may be broken)"]
        return response, changed_tables(before)


def refusal(client: Client, route: Route, method: str, url: str, world: World, **kw) -> str:
    """What went wrong, or nothing (an empty string) when the request answers 404 and
    changes no row."""
    response, changed = attempt(client, route, method, url, world, **kw)
    if response.status_code != 404 or changed:
        return f"{method} {url} {kw}: {response.status_code}, changed {changed}"
    return ""


def signed_in(user: User) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


# The tests


def test_every_route_is_covered():
    """Each route names only known objects, or is reviewed as having none."""
    problems = []
    for route in routes():
        unknown = [name for name, kind in route.kinds.items() if not kind]
        if route.is_admin:
            continue
        if unknown:
            shape = dict(shapes(route.route))
            problems.append(
                f"{route}: add to SHAPES what {', '.join(shape[n] for n in unknown)} names"
            )
        elif not route.ids and route.name not in NO_ID:
            problems.append(f"{route}: it names no object; review it and add it to NO_ID")
    assert not problems, "\n".join(problems)
    assert {r.name for r in routes()} >= NO_ID, "a listed route is gone"
    # Every page, fragment, download and API route with an ID is in the matrix.
    names = {r.name for r in id_routes()}
    assert {"portal:model-batch-download", "portal:dataset-version-export"} <= names
    assert {"portal:api-token-revoke", "api:api-evaluation", "api:api-import-job"} <= names
    assert len(id_routes()) >= 50


def test_the_urls_resolve_to_their_routes(alice_objects):
    for route in id_routes():
        match = resolve(route.url(alice_objects.values()))
        assert (match.route, match.func) == (route.route, route.view), route


def test_another_user_gets_404_and_changes_nothing(alice_objects, bob):
    """Bob, with Alice's IDs in the URL: every method the route answers, plain and over
    htmx, without and with an app of the same name as hers."""
    owner, intruder = signed_in(alice_objects.user), signed_in(bob)
    url_values = alice_objects.values()
    problems, reached = [], []
    for same_name_app in (False, True):
        if same_name_app:
            # Bob's app of the same name: what it holds is looked up in his app only.
            App.objects.create(owner=bob, slug=alice_objects.app.slug)
        for route in id_routes():
            if same_name_app and route.ids in ({"app"}, {"token"}):
                continue  # the route names nothing but his own app (or no app)
            methods = accepted_methods(owner, route, alice_objects)
            url = route.url(url_values)
            reached.append(route.name)
            for method in methods:
                for headers in ({}, HX):
                    problem = refusal(intruder, route, method, url, alice_objects, headers=headers)
                    problems.append(problem)
    problems = [p for p in problems if p]
    assert not problems, "\n".join(problems)
    assert len(reached) > 80
    assert ApiToken.objects.get(pk=alice_objects.token.pk).revoked is None


def test_the_owner_reaches_every_route(alice_objects):
    """The IDs the matrix fills in are real: the owner gets something else than 404 from
    each route, for at least one method (else the matrix would prove nothing)."""
    owner = signed_in(alice_objects.user)
    missed = []
    for route in id_routes():
        url = route.url(alice_objects.values())
        statuses = []
        for method in accepted_methods(owner, route, alice_objects):
            with rolled_back():
                statuses.append(send(owner, route, method, url, alice_objects).status_code)
        if not statuses or all(s == 404 for s in statuses):
            missed.append(f"{route}: {statuses}")
    assert not missed, "\n".join(missed)


@pytest.mark.parametrize("requester", ["alice", "bob"])
def test_mixed_ids_get_404_and_change_nothing(alice_objects, bob_objects, requester):
    """Each object in the URL swapped for the other user's, one at a time, under either
    user's app: 404, nothing changed. Version numbers count within their dataset or
    model, so swapping the dataset or model covers them."""
    worlds = {"alice": alice_objects, "bob": bob_objects}
    me = worlds[requester]
    other = bob_objects if me is alice_objects else alice_objects
    owner = signed_in(me.user)
    problems, checked = [], 0
    for route in id_routes():
        swappable = sorted(route.ids - {"app", "token"} - NUMBERED)
        if not swappable:
            continue
        methods = accepted_methods(owner, route, me)
        for app_world in (me, other):
            base = app_world.values()
            for kind in swappable:
                values = {**base, kind: (other if app_world is me else me).values()[kind]}
                url = route.url(values)
                for method in methods:
                    for headers in ({}, HX):
                        checked += 1
                        problems.append(refusal(owner, route, method, url, me, headers=headers))
    problems = [p for p in problems if p]
    assert not problems, "\n".join(problems)
    assert checked > 100


def test_ids_in_the_body_reach_only_the_users_own_objects(alice_objects, bob_objects):
    """Bob's own URLs with Alice's IDs in the form or JSON body (inputs to label or
    delete, concepts, datasets, dataset versions, evaluations): nothing changes."""
    bob = signed_in(bob_objects.user)
    by_name = {route.name: route for route in routes()}
    cases = [
        *[("portal:inputs-bulk", {"action": action}) for action in sorted(BULK_ACTIONS)],
        # As a negative: "+ concept" (value 1) makes Bob a concept of his own by that name.
        ("portal:input-label", {"value": "0"}),
        ("portal:input-similar-label", {"action": "label"}),
        ("portal:suspicious-fix", {}),
        ("portal:label-next-accept", {}),
        ("portal:label-next-skip", {}),
        ("portal:model-evaluate", {}),
        ("portal:inputs-upload", {}),
        ("portal:inputs-upload", {"mode": "csv"}),
        ("portal:model-setup", {}),
        ("portal:model-try-add", {}),
        ("api:api-compare", {}),
        ("api:api-evaluations", {}),
        ("api:update_labels", {}),
    ]
    problems = []
    for name, fields in cases:
        route = by_name[name]
        url = route.url(bob_objects.values())
        method = "PATCH" if name == "api:update_labels" else "POST"
        response, changed = attempt(bob, route, method, url, alice_objects, fields=fields)
        if changed or response.status_code == 500:
            problems.append(f"{method} {url} {fields}: {response.status_code}, changed {changed}")
    assert not problems, "\n".join(problems)


# Lists and searches

MARKERS = {
    "app ID": "qzx-app",
    "app description": "qzx-app-description",
    "concept": "qzx-concept",
    "concept name": "Qzx Concept Name",
    "dataset": "qzx-dataset",
    "input": "qzx secret input text",
    "model": "qzx-model",
    "trained model": "detector",
    "evaluation": "qzx-evaluation",
    "import": "qzx-import.csv",
    "batch": "qzx-batch.csv",
    "token": "qzx-token",
}


def add_markers(world: World) -> None:
    """Give Alice's objects names found nowhere else."""
    app = world.app
    app.slug, app.description = MARKERS["app ID"], MARKERS["app description"]
    app.save(update_fields=["slug", "description"])
    concept = Concept.objects.create(app=app, slug=MARKERS["concept"], name=MARKERS["concept name"])
    dataset = Dataset.objects.create(app=app, slug=MARKERS["dataset"])
    text = MARKERS["input"]
    item = Input.objects.create(app=app, text=text, text_hash=text_hash(text))
    dataset.inputs.add(item)
    item.annotations.create(concept=concept, value=1)
    versions.snapshot(versions.create_version(dataset).pk)
    TrainableModel.objects.create(app=app, slug=MARKERS["model"], params=default_params())
    Evaluation.objects.filter(pk=world.evaluation.pk).update(label=MARKERS["evaluation"])
    ImportJob.objects.filter(pk=world.import_job.pk).update(filename=MARKERS["import"])
    PredictionJob.objects.filter(pk=world.prediction_job.pk).update(filename=MARKERS["batch"])
    ApiToken.objects.filter(pk=world.token.pk).update(name=MARKERS["token"])
    held_out = make_version(app, "held-out", HELD_OUT)
    evaluating.start_evaluation(world.model_version, held_out, world.user)


def test_no_page_of_another_user_shows_alices_rows(alice_objects, bob_objects):
    """Every page, fragment and API answer Bob can reach, with his own IDs, searches for
    each marker, and Alice's IDs in query strings: none shows a row of Alice's."""
    add_markers(alice_objects)
    bob = signed_in(bob_objects.user)
    token_client = Client(HTTP_AUTHORIZATION=f"Token {bob_objects.key}")
    mine = bob_objects.values()
    alice_evaluations = Evaluation.objects.filter(model_version__model__app=alice_objects.app)
    foreign = "&".join(f"ids={e.pk}" for e in alice_evaluations)
    # A search for part of each marker: a leak would show the whole of it.
    queries = [""] + [f"?{urlencode({'q': value[1:-1]})}" for value in MARKERS.values()]
    queries += [
        f"?concept={MARKERS['concept']}",
        f"?dataset_id={MARKERS['dataset']}",
        f"?{foreign}",
    ]
    shown, pages = [], 0
    for route in routes():
        if route.is_admin or "" in route.ids:
            continue
        url = route.url(mine)
        # Lists and searches take every query; pages of one object, the plain one.
        for query in queries if route.ids <= {"app"} else [""]:
            for client in (bob, token_client) if route.is_api else (bob,):
                response = client.get(url + query)
                assert response.status_code != 500, (url + query, response.exc_info)
                pages += response.status_code == 200
                content = b"".join(response) if response.streaming else response.content
                body = content.decode(errors="replace").lower()
                shown += [
                    f"{url}{query} shows Alice's {what} {marker!r}"
                    for what, marker in MARKERS.items()
                    # What Bob sent may come back to him, as in "no concept 'x'".
                    if marker.lower() in body and marker not in unquote_plus(query)
                ]
    assert not shown, "\n".join(sorted(set(shown)))
    assert pages > 0, pages
    # Bob's pages do show his own rows: the check above looks where rows would be.
    home = bob.get("/").content.decode()
    assert "bob-app" in home
    assert "Bob&#x27;s text" in bob.get("/apps/bob-app/inputs/").content.decode()


def test_alices_own_pages_show_the_markers(alice_objects):
    """The markers are where a leak would put them: on Alice's own lists and searches."""
    add_markers(alice_objects)
    alice = signed_in(alice_objects.user)
    pages = {
        "/": ["app ID", "app description"],
        "/apps/qzx-app/concepts/": ["concept", "concept name"],
        "/apps/qzx-app/datasets/": ["dataset"],
        "/apps/qzx-app/inputs/?q=qzx": ["input"],
        "/apps/qzx-app/models/": ["model", "trained model"],
        "/api/v1/apps/qzx-app/models/detector/versions/1/evaluations": ["evaluation"],
        "/apps/qzx-app/": ["import"],
        "/apps/qzx-app/models/detector/batch/": ["batch"],
        "/account/api-tokens/": ["token"],
        "/api/v1/apps/qzx-app/inputs?q=qzx": ["input"],
    }
    for url, names in pages.items():
        body = alice.get(url).content.decode()
        for name in names:
            assert MARKERS[name] in body, (url, name)


# Django's admin


def test_the_admin_is_for_staff_only(alice_objects, bob):
    client = signed_in(bob)
    before = snapshot()
    app = alice_objects.app
    for url in (
        "/admin/",
        "/admin/portal/",
        "/admin/portal/app/",
        f"/admin/portal/app/{app.pk}/change/",
        f"/admin/portal/app/{app.pk}/delete/",
        f"/admin/auth/user/{alice_objects.user.pk}/password/",
    ):
        for method in ("get", "post"):
            response = getattr(client, method)(url, {"post": "yes", "description": "x"})
            assert response.status_code == 302, url
            assert response["Location"].startswith("/admin/login/"), url
    assert not changed_tables(before)
    assert [r for r in routes() if r.is_admin], "the admin's routes are checked here"

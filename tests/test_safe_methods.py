"""No GET or HEAD changes anything: every route, as the owner of the objects it names.

The routes come from the URL resolver (see test_authz_matrix.py). API calls are made
with the session: a token's `last_used` is bookkeeping that the token check writes at
most once a minute, whatever the method.
"""

from dataclasses import replace
from datetime import timedelta

import pytest
from django.utils import timezone

from portal.models import DatasetVersion, Evaluation, ImportJob, ModelVersion, PredictionJob
from tests.test_authz_matrix import (
    HX,
    World,
    alice_world,
    attempt,
    routes,
    signed_in,
)

AN_HOUR_AGO = timezone.now() - timedelta(hours=1)


@pytest.fixture
def alice_objects(trained_model, alice) -> World:
    return alice_world(trained_model, alice)


def unfinished(world: World) -> World:
    """The same user's objects with every job still waiting or running, for an hour now:
    a page must show them as they are, not move them on."""
    dataset_version = DatasetVersion.objects.create(
        dataset=world.dataset, number=2, created=AN_HOUR_AGO
    )
    model_version = ModelVersion.objects.create(
        model=world.model,
        number=2,
        params=world.model.params,
        status=ModelVersion.Status.TRAINING,
        started=AN_HOUR_AGO,
        heartbeat=AN_HOUR_AGO,
    )
    return replace(
        world,
        dataset_version=dataset_version,
        model_version=model_version,
        evaluation=Evaluation.objects.create(
            model_version=world.model_version,
            dataset_version=world.dataset_version,
            status=Evaluation.Status.EVALUATING,
            started=AN_HOUR_AGO,
        ),
        prediction_job=PredictionJob.objects.create(
            model_version=world.model_version,
            user=world.user,
            filename="running.csv",
            data=b"text\nhello\n",
            status=PredictionJob.Status.RUNNING,
            started=AN_HOUR_AGO,
        ),
        import_job=ImportJob.objects.create(
            app=world.app,
            user=world.user,
            filename="running.csv",
            data=b"text\nhello\n",
            status=ImportJob.Status.RUNNING,
            started=AN_HOUR_AGO,
        ),
    )


def walk(world: World, may_be_missing: frozenset[str] = frozenset()) -> tuple[list[str], int]:
    """GET and HEAD, plain and over htmx, on every route: the problems, and how many
    answers were 200. Routes in `may_be_missing` may answer the owner 404."""
    client = signed_in(world.user)
    problems, ok = [], 0
    for route in routes():
        if route.is_admin or "" in route.ids:
            continue
        url = route.url(world.values())
        for method in ("GET", "HEAD"):
            for headers in ({}, HX):
                response, changed = attempt(client, route, method, url, world, headers=headers)
                status = response.status_code
                ok += status == 200
                if changed or status == 500:
                    problems.append(f"{method} {url} {headers}: {status}, changed {changed}")
                elif route.ids and status == 404 and route.name not in may_be_missing:
                    problems.append(f"{method} {url} {headers}: the owner got 404")
    return problems, ok


def test_no_get_or_head_changes_anything(alice_objects):
    problems, ok = walk(alice_objects)
    assert not problems, "\n".join(problems)
    assert ok >= 100


def test_no_get_or_head_moves_an_unfinished_job_on(alice_objects):
    # An unfinished prediction has no file to download, a version without a finished
    # snapshot none to export, an evaluation without results no selection; the
    # evaluation is of the trained version 1, not of 2.
    missing = {
        "portal:model-batch-download",
        "portal:dataset-version-export",
        "portal:evaluation-selection",
        "api:api-evaluation",
    }
    problems, ok = walk(unfinished(alice_objects), frozenset(missing))
    assert not problems, "\n".join(problems)
    assert ok >= 100

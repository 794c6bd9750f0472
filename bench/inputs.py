"""Inputs at scale: CSV import, the inputs explorer and dataset versions.

Each figure is compared, in the same run, with the raw libraries doing the same work:
Python's csv module with DB-API inserts, or one hand-written SQL statement.
"""

import csv
import hashlib
import io

from bench import charts
from bench.common import Result, measure, sentences

PAGE_SQL = """
SELECT i.id, i.text FROM portal_input i
JOIN portal_annotation a ON a.input_id = i.id
WHERE i.app_id = %s AND a.concept_id = %s AND a.value = 1
ORDER BY i.created DESC, i.id DESC LIMIT 50
"""
COUNT_SQL = """
SELECT COUNT(*) FROM portal_input i JOIN portal_annotation a ON a.input_id = i.id
WHERE i.app_id = %s AND a.concept_id = %s AND a.value = 1
"""
SNAPSHOT_SQL = """
INSERT INTO raw_version_row (input_id, text, hash, labels)
SELECT i.id, i.text, i.text_hash,
       (SELECT GROUP_CONCAT(c.slug || ':' || a.value) FROM portal_annotation a
        JOIN portal_concept c ON c.id = a.concept_id WHERE a.input_id = i.id)
FROM portal_input i JOIN portal_dataset_inputs m ON m.input_id = i.id
WHERE m.dataset_id = %s
"""


def make_csv(texts: list[str]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["input", "concepts"])
    for i, text in enumerate(texts):
        writer.writerow([text, "spam" if i % 3 == 0 else "ham"])
    return out.getvalue().encode()


def new_app():
    from django.contrib.auth import get_user_model

    from portal.models import App, Dataset

    user, _ = get_user_model().objects.get_or_create(username="bench")
    App.objects.filter(slug="bench").delete()
    app = App.objects.create(owner=user, slug="bench")
    Dataset.objects.create(app=app, slug="all")
    return app


def our_import(data: bytes) -> None:
    from portal import importing
    from portal.csv_io import parse_csv
    from portal.models import App, Dataset

    app = App.objects.get(slug="bench")
    rows = parse_csv(data)
    datasets = list(Dataset.objects.filter(app=app))
    importing.add_inputs(app, rows, datasets=datasets, concepts=[], author=None)


def raw_import(data: bytes) -> None:
    """The floor: csv.reader and executemany into bare tables, one transaction."""
    from django.db import connection, transaction

    rows = list(csv.reader(io.StringIO(data.decode())))[1:]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS raw_input")
        cursor.execute("CREATE TABLE raw_input (text TEXT, hash TEXT, label TEXT)")
        cursor.executemany(
            "INSERT INTO raw_input (text, hash, label) VALUES (%s, %s, %s)",
            [(text, hashlib.sha256(text.encode()).hexdigest(), label) for text, label in rows],
        )


def explorer(app, runs: int) -> list[Result]:
    from django.conf import settings
    from django.db import connection
    from django.test import Client

    from portal.models import Concept

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    client = Client()
    client.force_login(app.owner)
    spam = Concept.objects.get(app=app, slug="spam")
    url = "/apps/bench/inputs/?concept=spam&state=positive&page=3"

    def page() -> None:
        assert client.get(url).status_code == 200

    def raw() -> None:
        with connection.cursor() as cursor:
            cursor.execute(COUNT_SQL, [app.pk, spam.pk])
            cursor.fetchall()
            cursor.execute(PAGE_SQL, [app.pk, spam.pk])
            cursor.fetchall()

    page()  # warm the template cache
    count = app.inputs.count()
    return [
        Result(
            f"Inputs explorer page, {count:,} inputs, filtered by concept",
            measure(page, runs * 3),
            measure(raw, runs * 3),
            "whole request in-process (middleware, queries, template) vs the two bare queries",
        )
    ]


def version(app, runs: int) -> list[Result]:
    from django.db import connection, transaction

    from portal import versions
    from portal.models import DatasetVersion

    dataset = app.datasets.get()
    pending: list[DatasetVersion] = []

    def new_version() -> None:
        number = dataset.versions.count() + 1
        pending.append(DatasetVersion.objects.create(dataset=dataset, number=number))

    def raw() -> None:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS raw_version_row")
            cursor.execute(
                "CREATE TABLE raw_version_row (input_id INT, text TEXT, hash TEXT, labels TEXT)"
            )
            cursor.execute(SNAPSHOT_SQL, [dataset.pk])

    ours = measure(lambda: versions.snapshot(pending[-1].pk), runs, before=new_version)
    assert DatasetVersion.objects.get(pk=pending[-1].pk).status == DatasetVersion.Status.READY
    return [
        Result(
            f"New version of a {dataset.inputs.count():,}-input dataset",
            ours,
            measure(raw, runs),
            "snapshot job vs one INSERT ... SELECT with GROUP_CONCAT",
        )
    ]


def run(quick: bool) -> list[Result]:
    size, runs = (20_000, 2) if quick else (100_000, 3)
    data = make_csv(sentences(size))
    imported = measure(lambda: our_import(data), runs, before=new_app)
    results = [
        Result(
            f"CSV import, {size:,} rows (parse, dedupe, save)",
            imported,
            measure(lambda: raw_import(data), runs),
            f"{size / imported.median:,.0f} rows/s; raw: csv.reader + executemany into one bare"
            " table (no labels, datasets or duplicate check)",
        )
    ]
    from portal.models import App

    app = App.objects.get(slug="bench")
    return results + explorer(app, runs) + version(app, runs)


def chart(results: list[Result]) -> str:
    """Import, explorer page and new version: each as a multiple of the raw library."""
    size = results[0].name.split(", ")[1].split()[0]
    return charts.relative(
        "inputs",
        f"Inputs, {size} rows: our time / raw library's",
        ["CSV import", "Explorer page", "New version"],
        [r.ratio for r in results],
    )

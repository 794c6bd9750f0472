"""Find similar and Suspicious labels at scale: the in-process index of an app's inputs.

One app with 100,000 inputs (20,000 in quick mode) whose cached embeddings are random
384-dimensional unit vectors (what the index costs depends on the count and the size of
the vectors, not on what they mean). Timed: building the index from the database
(`similar.build`), a Find similar query (`similar.index_for` on the cached index, which
checks the app's inputs are unchanged, then `similar.nearest`), and the Suspicious labels
check (`suspicious.check`: 5-fold cross-validation and near-duplicate pairs) on its
largest allowed size. Beside each, the raw library doing the same work: the same join in
one SQL statement through the DB-API into NumPy, and one NumPy matrix-vector product
with `argpartition`.
"""

import numpy as np

from bench.common import Result, measure, seconds, table

DIMS = 384
QUICK_SIZE, FULL_SIZE = 20_000, 100_000
QUERIES = 20
UPLOAD = 1_000
BATCH = 2_000


def unit_vectors(rng: np.random.Generator, n: int) -> np.ndarray:
    vectors = rng.standard_normal((n, DIMS)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def new_app(slug: str, vectors: np.ndarray, base_model: str):
    """An app with an input per row of `vectors`, cached as its embedding."""
    from django.contrib.auth.models import User

    from portal.models import App

    owner, _ = User.objects.get_or_create(username="bench-similar")
    App.objects.filter(owner=owner, slug=slug).delete()
    app = App.objects.create(owner=owner, slug=slug, base_model=base_model)
    add_inputs(app, vectors, 0)
    return app


def add_inputs(app, vectors: np.ndarray, first: int) -> None:
    """Inputs numbered from `first`, one per row of `vectors`, with their embeddings."""
    from portal.models import Embedding, Input, text_hash

    for start in range(0, len(vectors), BATCH):
        count = min(BATCH, len(vectors) - start)
        numbers = range(first + start, first + start + count)
        hashes = [text_hash(f"{app.slug} {n}") for n in numbers]
        Input.objects.bulk_create(
            [
                Input(app=app, text=f"text {n}", text_hash=h)
                for n, h in zip(numbers, hashes, strict=True)
            ],
            batch_size=500,
        )
        Embedding.objects.bulk_create(
            [
                Embedding(base_model=app.base_model, text_hash=h, vector=v.astype("<f4").tobytes())
                for h, v in zip(hashes, vectors[start : start + count], strict=True)
            ],
            batch_size=500,
        )


def raw_build(app) -> np.ndarray:
    from django.db import connection

    from portal.models import Embedding, Input

    inputs, embeddings = Input._meta.db_table, Embedding._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT e.vector FROM {inputs} i JOIN {embeddings} e ON e.text_hash = i.text_hash"
            f" AND e.base_model = %s WHERE i.app_id = %s ORDER BY i.id",
            [app.base_model, app.pk],
        )
        data = b"".join(bytes(row[0]) for row in cursor.fetchall())
    return np.frombuffer(data, dtype="<f4").reshape(-1, DIMS)


def labeled_app(size: int, rng: np.random.Generator, base_model: str):
    """An app at the Suspicious labels bound: two clusters labeled a and b, with 2% of
    the labels flipped, so cross-validation has something to learn and to flag."""
    from portal.models import Annotation, Concept, Input

    centers = unit_vectors(rng, 2)
    cluster = np.arange(size) % 2
    vectors = centers[cluster] + 0.08 * rng.standard_normal((size, DIMS)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    app = new_app("bench-suspicious", vectors, base_model)
    concepts = [Concept.objects.create(app=app, slug=s, name=s) for s in ("a", "b")]
    ids = Input.objects.filter(app=app).order_by("pk").values_list("pk", flat=True)
    flipped = set(rng.choice(size, size // 50, replace=False).tolist())
    Annotation.objects.bulk_create(
        [
            Annotation(input_id=pk, concept=concepts[int(cluster[i]) ^ (i in flipped)], value=1)
            for i, pk in enumerate(ids)
        ],
        batch_size=500,
    )
    return app


def run(quick: bool) -> list[str]:
    from django.core.cache import cache

    from portal import similar, suspicious

    size, runs = (QUICK_SIZE, 2) if quick else (FULL_SIZE, 3)
    rng = np.random.default_rng(5)
    base_model = "bench-random-384"
    app = new_app("bench-similar", unit_vectors(rng, size), base_model)
    built = measure(lambda: similar.build(app), runs)
    index = similar.index_for(app)
    sources = rng.choice(index.ids, QUERIES, replace=False).tolist()
    queries = iter(sources * runs * 2)
    query = measure(lambda: similar.nearest(similar.index_for(app), next(queries)), QUERIES)

    def raw_query() -> np.ndarray:
        scores = index.matrix @ index.matrix[int(rng.integers(len(index.ids)))]
        return np.argpartition(-scores, 20)[:21]

    results = [
        Result(
            f"Find similar index build, {size:,} inputs",
            built,
            measure(lambda: raw_build(app), runs),
            f"{index.matrix.nbytes / 2**20:.0f} MB of float32; raw: one SQL join via the"
            " DB-API into NumPy",
        ),
        Result(
            f"Find similar query, {size:,} inputs (20 nearest)",
            query,
            measure(raw_query, QUERIES),
            "includes the check that the app's inputs are unchanged (one aggregate query);"
            " raw: NumPy matrix-vector product + argpartition",
        ),
    ]
    uploads = iter(range(runs))

    def upload() -> None:
        similar.index_for(app)  # up to date before the upload
        add_inputs(app, unit_vectors(rng, UPLOAD), size + UPLOAD * next(uploads))

    extended = measure(lambda: similar.index_for(app), runs, before=upload)
    bound = suspicious.MAX_LABELED
    labeled = labeled_app(bound, rng, base_model)
    first = measure(lambda: suspicious.check(labeled), runs, before=cache.clear)
    report = suspicious.check(labeled)
    reload = measure(lambda: suspicious.check(labeled), runs)
    lines = [
        "## Find similar and suspicious labels",
        "",
        *table(results),
    ]
    lines += [
        "",
        f"After an upload of {UPLOAD:,} inputs to the {size:,}, the next Find similar extends"
        f" the index with them in {seconds(extended.median)} ({seconds(extended.low)}–"
        f"{seconds(extended.high)}, {extended.runs} runs) instead of building it again.",
        "",
        f"Suspicious labels on {bound:,} labeled inputs (the most it checks at once): "
        f"{seconds(first.median)} ({seconds(first.low)}–{seconds(first.high)}) on the first "
        f"request (index, {report.folds}-fold cross-validation of the embedding-only head, "
        f"near-duplicate pairs), {seconds(reload.median)} on a reload with the same labels "
        f"(cached). It flagged {len(report.mislabeled)} rows (the page lists at most "
        f"{suspicious.MAX_ROWS}) among the {bound // 50} labels flipped on purpose.",
        "",
    ]
    return lines


if __name__ == "__main__":
    import sys

    from bench.common import setup_django

    setup_django()
    print("\n".join(run("--quick" in sys.argv)))

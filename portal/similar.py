"""Find similar: an app's inputs nearest to one of them, by embedding similarity.

The index is a per-process matrix of the app's embedded inputs (float32 unit vectors,
one row per input), so a query is one matrix-vector product: at 100,000 inputs of 384
dimensions the matrix is 146 MB, built in 1 to 2 s, and a query takes about 50 ms,
most of it the check that the inputs are unchanged (bench/similar.py). It is built from
the embedding cache in one streamed query and kept for the few most recently used apps.
Its key changes with the app's inputs (their count and newest one) and its base model:
a deletion or another base model rebuilds it; new inputs, and inputs embedded after it
was built (the background job's work), are added to it on the next request.
"""

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from django.db.models import Count, Max, OuterRef, QuerySet, Subquery

from portal.models import App, Embedding, Input

MAX_APPS = 4  # indexes kept per process; each holds its app's inputs x dims float32
CHUNK = 2000  # rows per fetch while building
EXTEND_MAX = 900  # pending inputs looked up by ID (SQLite's parameter limit); more: rebuild
DEFAULT_RESULTS = 20
RESULT_CHOICES = (20, 50, 100)


@dataclass
class Index:
    """Row i of `matrix` is the embedding of input `ids[i]`; `pending` are the IDs of
    the app's inputs not embedded yet."""

    key: tuple
    ids: np.ndarray  # int64, ascending
    matrix: np.ndarray  # (len(ids), dims) float32, rows of unit length
    pending: list[int]

    def row_of(self, input_pk: int) -> int | None:
        i = int(np.searchsorted(self.ids, input_pk))
        return i if i < len(self.ids) and self.ids[i] == input_pk else None

    def rows_of(self, input_pks: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """(those of `input_pks` that are embedded, in order; their rows in `matrix`)."""
        wanted = np.asarray(input_pks, dtype=np.int64)
        if not len(self.ids):
            return wanted[:0], wanted[:0]
        rows = np.minimum(np.searchsorted(self.ids, wanted), len(self.ids) - 1)
        found = self.ids[rows] == wanted
        return wanted[found], rows[found]


_indexes: OrderedDict[int, Index] = OrderedDict()
_lock = threading.Lock()


def _key(app: App) -> tuple:
    """What the index depends on: any upload or deletion changes the count or the newest
    input (IDs and times, so that rows rolled back and written again are told apart)."""
    stats = Input.objects.filter(app=app).aggregate(
        n=Count("pk"), newest=Max("pk"), latest=Max("created")
    )
    return (app.pk, app.created, app.base_model, stats["n"], stats["newest"], stats["latest"])


def _with_vectors(inputs: QuerySet[Input], base_model: str) -> QuerySet:
    """(input ID, vector or None) for each input: one query, the cache's unique index
    answering each row's lookup."""
    vector = Embedding.objects.filter(base_model=base_model, text_hash=OuterRef("text_hash"))
    return (
        inputs.annotate(vector=Subquery(vector.values("vector")[:1]))
        .order_by("pk")
        .values_list("pk", "vector")
    )


def _fill(base_model: str, inputs: QuerySet[Input]) -> tuple[list, list, list]:
    """(IDs, vectors, IDs without a vector) of `inputs`."""
    ids, vectors, pending = [], [], []
    for pk, vector in _with_vectors(inputs, base_model).iterator(chunk_size=CHUNK):
        if vector is None:
            pending.append(pk)
        else:
            ids.append(pk)
            vectors.append(bytes(vector))
    return ids, vectors, pending


def _matrix(vectors: list[bytes]) -> np.ndarray:
    if not vectors:
        return np.zeros((0, 0), dtype=np.float32)
    matrix = np.frombuffer(b"".join(vectors), dtype="<f4").reshape(len(vectors), -1)
    matrix = matrix.astype(np.float32)  # a writable copy, in native order
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    matrix /= np.where(norms > 0, norms, 1.0)
    return matrix


def build(app: App, key: tuple | None = None) -> Index:
    ids, vectors, pending = _fill(app.base_model, Input.objects.filter(app=app))
    return Index(key or _key(app), np.asarray(ids, dtype=np.int64), _matrix(vectors), pending)


def _with(index: Index, key: tuple, found: tuple[list, list, list], pending: list) -> Index:
    """`index` and the rows `found` (IDs, vectors, IDs still without a vector)."""
    ids, vectors, waiting = found
    if not ids:
        return Index(key, index.ids, index.matrix, pending + waiting)
    all_ids = np.concatenate([index.ids, np.asarray(ids, dtype=np.int64)])
    new_rows = _matrix(vectors)
    matrix = new_rows if not len(index.ids) else np.vstack([index.matrix, new_rows])
    if len(index.ids) and ids[0] < index.ids[-1]:  # inputs embedded late, not new ones
        order = np.argsort(all_ids, kind="stable")
        all_ids, matrix = all_ids[order], matrix[order]
    return Index(key, all_ids, matrix, pending + waiting)


def _updated(app: App, index: Index, key: tuple) -> Index:
    """`index` brought up to date with the app's inputs (`key`): extended when inputs
    were only added or embedded since, else built again."""
    if key[:3] != index.key[:3] or len(index.pending) > EXTEND_MAX:
        return build(app, key)
    if key != index.key:
        # Added since, and none deleted: the new inputs are the ones after the newest.
        added = Input.objects.filter(app=app, pk__gt=index.key[4] or 0)
        if index.key[3] + added.count() != key[3]:
            return build(app, key)
        index = _with(index, key, _fill(app.base_model, added), index.pending)
    if index.pending and len(index.pending) <= EXTEND_MAX:
        waiting = Input.objects.filter(app=app, pk__in=index.pending)
        index = _with(index, key, _fill(app.base_model, waiting), [])
    return index


def index_for(app: App) -> Index:
    """The app's index, from this process's cache, brought up to date with its inputs."""
    key = _key(app)
    with _lock:
        index = _indexes.get(app.pk)
        if index is not None:
            _indexes.move_to_end(app.pk)
    if index is None:
        index = build(app, key)
    elif index.key != key or index.pending:
        index = _updated(app, index, key)
    else:
        return index
    with _lock:
        _indexes[app.pk] = index
        _indexes.move_to_end(app.pk)
        while len(_indexes) > MAX_APPS:
            _indexes.popitem(last=False)
    return index


@dataclass(frozen=True)
class Result:
    input_pk: int
    score: float


def nearest(index: Index, input_pk: int, k: int = DEFAULT_RESULTS) -> list[Result] | None:
    """The `k` inputs most similar to `input_pk` (itself left out), most similar first;
    None when that input is not embedded yet."""
    row = index.row_of(input_pk)
    if row is None:
        return None
    scores = index.matrix @ index.matrix[row]
    scores[row] = -np.inf
    k = min(k, len(scores) - 1)
    if k <= 0:
        return []
    top = np.argpartition(-scores, k - 1)[:k]
    top = top[np.lexsort((index.ids[top], -scores[top]))]
    return [Result(int(index.ids[i]), float(scores[i])) for i in top]

"""Evaluations: the numbers of our evaluations against the raw libraries' on the same split.

Models are trained through `training.train` with the default settings (Enrich Automatic,
C by cross-validation, not exclusive) and evaluated through `evaluating.start_evaluation`
and the worker's `run`, called in-process. The raw side is `SentenceTransformer.encode` +
scikit-learn's `LogisticRegression()` with default settings, on the same rows. Needs the
public sets in PORTAL_BENCH_DATA (see `bench.models`).
"""

import time
from contextlib import nullcontext
from unittest import mock

import numpy as np

from bench.models import (
    DATA,
    DATA_FILES,
    add_texts,
    click_to_trained,
    embed_ids,
    labeled_model,
    met,
    new_app,
    raw_encode,
)

FOLDS = 5  # as `portal.evaluating.FOLDS`
MARGIN = 0.005  # "within 0.5 points of raw"


def import_dataset(app, slug: str, rows: list):
    """Upload parsed CSV rows into a new dataset `slug` through the importer; its version 1."""
    from portal import importing, versions
    from portal.models import Dataset, DatasetVersion

    dataset = Dataset.objects.create(app=app, slug=slug)
    importing.add_inputs(app, rows, datasets=[dataset], concepts=[], author=None)
    version = DatasetVersion.objects.create(dataset=dataset, number=1)
    versions.snapshot(version.pk)
    version.refresh_from_db()
    return version


def evaluate_in_process(version, dataset_version, queue: bool):
    """The Evaluate click and the worker's job, in-process; without a queue the send is
    skipped. Returns the finished evaluation and the seconds the worker's side took."""
    from portal import evaluating
    from portal.models import Evaluation

    skip = mock.patch.object(evaluating, "enqueue_on_commit", lambda *a, **k: None)
    with nullcontext() if queue else skip:
        evaluation = evaluating.start_evaluation(version, dataset_version, None)
    started = time.perf_counter()
    evaluating.run(evaluation.pk)
    seconds = time.perf_counter() - started
    evaluation.refresh_from_db()
    assert evaluation.status == Evaluation.Status.EVALUATED, evaluation.error
    return evaluation, seconds


def scored(evaluation) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The evaluated rows' texts, their labels, and our label for each: the concept with
    the highest probability in the stored scores."""
    from portal import evaluating
    from portal.models import DatasetVersionRow

    scores = evaluating.load_scores(evaluation)
    concepts = np.array(evaluation.model_version.concepts)
    Y = evaluating.known_labels(scores.Y)
    assert ((Y == 1).sum(axis=1) == 1).all(), "each row has exactly one label"
    rows = DatasetVersionRow.objects.in_bulk(scores.rows.tolist())
    texts = [rows[pk].text for pk in scores.rows.tolist()]
    return texts, concepts[Y.argmax(axis=1)], concepts[scores.P.argmax(axis=1)]


def table_row(name: str, evaluation, truth, ours, raw, seconds: float) -> str:
    from sklearn.metrics import accuracy_score, f1_score

    accuracy = [accuracy_score(truth, labels) for labels in (ours, raw)]
    f1 = [f1_score(truth, labels, average="macro") for labels in (ours, raw)]
    close = [o >= r - MARGIN for o, r in (accuracy, f1)]
    page_f1 = evaluation.metrics["summary"]["macro_f1"]
    return (
        f"| {name} | {evaluation.method} | {len(truth)} | {accuracy[0]:.3f} / {accuracy[1]:.3f} "
        f"| {f1[0]:.3f} / {f1[1]:.3f} | accuracy {met(close[0])}, macro F1 {met(close[1])} "
        f"| {page_f1:.3f} | {seconds:.2f} s |"
    )


def sms(queue: bool, train_rows: list, test_rows: list) -> str:
    """Trained on the SMS train split; evaluated on the test split, a second dataset."""
    from sklearn.linear_model import LogisticRegression

    app = new_app("bench-eval-sms")
    add_texts(app, [r.text for r in train_rows], [r.concepts[0] for r in train_rows])
    version = click_to_trained(labeled_model(app), queue)
    test = import_dataset(app, "test", test_rows)
    embed_ids(list(test.dataset.inputs.order_by("pk").values_list("pk", flat=True)))
    evaluation, seconds = evaluate_in_process(version, test, queue)
    texts, truth, ours = scored(evaluation)

    training = list(version.dataset_version.rows.order_by("pk").values_list("text", "positive"))
    raw_model = LogisticRegression().fit(
        raw_encode([t for t, _ in training]), [p[0] for _, p in training]
    )
    raw = raw_model.predict(raw_encode(texts))
    name = f"SMS spam: trained on sms_spam_train ({len(training)} rows), tested on sms_spam_test"
    return table_row(name, evaluation, truth, ours, raw, seconds)


def imdb(queue: bool, rows: list) -> tuple[str, str]:
    """Cross-validated on the training version; the raw side on the same folds."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    app = new_app("bench-eval-imdb")
    add_texts(app, [r.text for r in rows], [r.concepts[0] for r in rows])
    version = click_to_trained(labeled_model(app, "sentiment"), queue)
    evaluation, seconds = evaluate_in_process(version, version.dataset_version, queue)
    texts, truth, ours = scored(evaluation)

    folds = StratifiedKFold(FOLDS, shuffle=True, random_state=0)
    raw = cross_val_predict(LogisticRegression(), raw_encode(texts), truth, cv=folds)
    note = f" ({evaluation.folds_note})" if evaluation.folds_note else ""
    return table_row("IMDB (imdb.csv)", evaluation, truth, ours, raw, seconds), note


def accuracy() -> list[str]:
    """Markdown lines: our evaluations' accuracy and macro F1 next to the raw libraries'."""
    if not all((DATA / f).exists() for f in DATA_FILES):
        return [f"_Skipped: the public data sets are not in {DATA} (set PORTAL_BENCH_DATA)._"]
    from portal import health
    from portal.csv_io import parse_csv

    queue = health.check_broker()["ok"]
    sms_train, sms_test, imdb_rows = (parse_csv((DATA / f).read_bytes()) for f in DATA_FILES)
    imdb_line, folds_note = imdb(queue, imdb_rows)
    return [
        "Evaluations started with `evaluating.start_evaluation` and run by the worker's "
        "`evaluating.run`, in-process, on a version trained through `training.train` with the "
        "default settings (Enrich Automatic, C by cross-validation, not exclusive). Ours: each "
        "row's label is the concept with the highest probability in the evaluation's stored "
        "scores (the top concept of a one-vs-rest model, which is not exclusive); raw: "
        "`SentenceTransformer.encode` + `LogisticRegression()` with default settings, "
        "`predict`, on the same rows. Both sides scored with scikit-learn's `accuracy_score` and "
        '`f1_score(average="macro")`. "Page macro F1" is the evaluation page\'s own figure: '
        "each concept's F1 at threshold 0.5, averaged. SMS: a held-out test set, sms_spam_test "
        "imported as a second dataset of the app; raw fitted on the same training rows. IMDB: "
        f"our {FOLDS}-fold cross-validation on the version the model was trained on{folds_note}; "
        f"raw: `cross_val_predict` with `StratifiedKFold({FOLDS}, shuffle=True, random_state=0)` "
        "on the same rows in the same order, which are the folds ours draws for two "
        "single-label concepts with Enrich on (ours also adds the Enrich texts as negatives to "
        "each fold's training rows). Rows are counted after the importer dropped exact "
        "duplicates. Time: the worker's side of the evaluation, with every text already embedded "
        "(as the embedding jobs leave them after an upload).",
        "",
        "| data set | method | rows | accuracy: ours / raw | macro F1: ours / raw "
        "| ours within 0.5 points of raw or better | page macro F1 | evaluation time |",
        "|---|---|---|---|---|---|---|---|",
        sms(queue, sms_train, sms_test),
        imdb_line,
    ]

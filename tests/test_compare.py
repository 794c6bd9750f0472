import csv
import io

import numpy as np
import pytest

from portal import comparing, evaluating, training, versions
from portal.models import (
    Annotation,
    App,
    Concept,
    Dataset,
    DatasetVersion,
    Evaluation,
    Input,
    ModelVersion,
    TrainableModel,
    text_hash,
)
from tests.test_tasks import wait_for

# Committed transactions: training writes its heartbeat from a thread of its own.
pytestmark = pytest.mark.django_db(transaction=True)

LIST = "/apps/spam-filter/evaluations/"
COMPARE = "/apps/spam-filter/evaluations/compare/"

MORE_SPAM = [
    "You are a lucky winner of a brand new car, call 0800 now to claim it.",
    "Act now: limited offer, buy two get three free, click the link today!",
    "Your account was selected for a cash reward of $5000, reply to claim.",
    "Hot singles in your area want to meet you, text MEET to 69696.",
]
MORE_HAM = [
    "The meeting moved to Thursday afternoon, same room as last week.",
    "Did you remember to water the plants before leaving?",
    "Mum says dinner is at seven, bring the salad please.",
    "I finished the report, can you take a look before Friday?",
]


def evaluated(version: ModelVersion, dataset_version: DatasetVersion) -> Evaluation:
    """An evaluation run in this process, as the worker runs it."""
    evaluation = Evaluation.objects.create(
        model_version=version,
        dataset_version=dataset_version,
        kfold=dataset_version.pk == version.dataset_version_id,
    )
    evaluating.run(evaluation.pk)
    evaluation.refresh_from_db()
    assert evaluation.status == Evaluation.Status.EVALUATED, evaluation.error
    return evaluation


def more_emails(app: App) -> DatasetVersion:
    """Version 1 of a second dataset, "more-emails", with other spam and ham texts."""
    dataset = Dataset.objects.create(app=app, slug="more-emails")
    for slug, texts in (("spam", MORE_SPAM), ("ham", MORE_HAM)):
        concept = Concept.objects.get(app=app, slug=slug)
        for text in texts:
            item = Input.objects.create(app=app, text=text, text_hash=text_hash(text))
            dataset.inputs.add(item)
            Annotation.objects.create(input=item, concept=concept, value=1)
    version = versions.create_version(dataset)
    versions.snapshot(version.pk)
    version.refresh_from_db()
    return version


def second_version(model: TrainableModel) -> ModelVersion:
    """Version 2, trained on version 2 of "emails", where two spam texts were relabeled ham:
    it predicts them otherwise than version 1 does."""
    app = model.app
    ham = Concept.objects.get(app=app, slug="ham")
    relabeled = Annotation.objects.filter(input__app=app, concept__slug="spam").order_by("pk")[:2]
    Annotation.objects.filter(pk__in=[a.pk for a in relabeled]).update(concept=ham)
    dataset_version = versions.create_version(Dataset.objects.get(app=app, slug="emails"))
    versions.snapshot(dataset_version.pk)
    model.params["dataset_version_id"] = str(dataset_version.number)
    model.save()
    version = training.start_training(model)
    training.train(version.pk)
    version.refresh_from_db()
    assert version.status == ModelVersion.Status.TRAINED, version.error
    return version


def ids_query(*evaluations: Evaluation, **extra: str) -> dict:
    return {"ids": [str(e.pk) for e in evaluations], **extra}


def test_one_model_on_two_datasets(alice_client, trained_model, celery_worker):
    version = trained_model.versions.get()
    emails = version.dataset_version
    other = more_emails(trained_model.app)
    # One through the real queue and worker, as the Evaluate button starts it.
    queued = evaluating.start_evaluation(version, other, None)
    assert wait_for(lambda: Evaluation.objects.get(pk=queued.pk).is_finished, timeout=60)
    queued.refresh_from_db()
    assert queued.status == Evaluation.Status.EVALUATED, queued.error
    cross = evaluated(version, emails)

    response = alice_client.get(COMPARE, ids_query(cross, queued))
    assert response.status_code == 200
    comparison = response.context["comparison"]
    assert comparison.differs == "dataset"
    assert [c.label for c in comparison.compared] == ["emails v1", "more-emails v1"]
    assert comparison.flips is None
    body = response.content.decode()
    assert "Model detector v1 evaluated on 2 dataset versions: emails v1, more-emails v1." in body
    assert "5-fold cross-validation" in body and "held-out test set" in body
    # Per concept, one row per evaluation, its numbers those stored.
    spam = next(c for c in comparison.concepts if c.concept == "spam")
    assert [row.compared.label for row in spam.rows] == ["emails v1", "more-emails v1"]
    assert spam.rows[1].metrics == queued.metrics["concepts"][0]
    assert spam.rows[1].metrics["labeled"] == len(MORE_SPAM)
    # The curves: both concepts, two charts each, one line per evaluation.
    assert body.count('<polyline class="series"') == 2 * 2 * 2
    assert body.count('<svg viewBox="0 0 ') == 4  # the charts, not the icons
    assert "Download CSV" in body


def test_two_versions_on_one_dataset_list_the_flipped_inputs(alice_client, trained_model):
    first = trained_model.versions.get()
    second = second_version(trained_model)
    emails = first.dataset_version
    before, after = evaluated(first, emails), evaluated(second, emails)

    response = alice_client.get(COMPARE, ids_query(after, before))
    assert response.status_code == 200
    comparison = response.context["comparison"]
    assert comparison.differs == "model"
    assert [c.label for c in comparison.compared] == ["detector v1", "detector v2"]

    # A recount, straight from the stored scores.
    a, b = evaluating.load_scores(before), evaluating.load_scores(after)
    assert list(a.rows) == list(b.rows)
    changed = (a.P >= 0.5) != (b.P >= 0.5)
    expected = {
        (int(a.rows[i]), ["spam", "ham"][j]) for i, j in zip(*np.nonzero(changed), strict=True)
    }
    flips = comparison.flips
    assert flips.total == len(expected) > 0
    assert {(f.row, f.concept) for f in flips.items} == expected
    assert flips.inputs == int(changed.any(axis=1).sum())
    assert flips.fixed + flips.broken == flips.total
    assert flips.broken > 0  # version 2 learned the wrong labels
    flip = flips.items[0]
    i = list(a.rows).index(flip.row)
    j = ["spam", "ham"].index(flip.concept)
    assert (flip.before, flip.after) == (a.P[i, j], b.P[i, j])
    body = response.content.decode()
    assert 'id="flipped-inputs"' in body
    assert body.count('<td class="flip-text">') == len(expected)
    assert "2 model versions evaluated on dataset emails v1: detector v1, detector v2." in body

    # Scores that can't be read leave the rest of the comparison as it was.
    Evaluation.objects.filter(pk=after.pk).update(data=b"not an npz file")
    response = alice_client.get(COMPARE, ids_query(after, before))
    assert response.status_code == 200
    body = response.content.decode()
    assert "The flipped inputs can't be listed: the stored scores" in body
    assert 'id="compare-concepts"' in body


def test_the_csv_holds_the_stored_numbers(alice_client, trained_model):
    version = trained_model.versions.get()
    one = evaluated(version, version.dataset_version)
    two = evaluated(version, more_emails(trained_model.app))

    response = alice_client.get(COMPARE, ids_query(one, two, format="csv"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith("attachment;")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    totals = [r for r in rows if r["scope"] == "macro average"]
    concepts = [r for r in rows if r["scope"] == "concept"]
    assert len(totals) == 2 and len(concepts) == 4
    for evaluation in (one, two):
        (total,) = [r for r in totals if r["evaluation"] == str(evaluation.pk)]
        summary = evaluation.metrics["summary"]
        assert int(total["inputs"]) == summary["n_rows"]
        assert float(total["roc_auc"]) == summary["macro_roc_auc"]
        assert float(total["precision"]) == summary["macro_precision"]
        assert float(total["recall"]) == summary["macro_recall"]
        assert float(total["f1"]) == summary["macro_f1"]
        assert total["accuracy"] == ""  # not mutually exclusive
        for stored in evaluation.metrics["concepts"]:
            (row,) = [
                r
                for r in concepts
                if r["evaluation"] == str(evaluation.pk) and r["concept"] == stored["concept"]
            ]
            assert row["dataset"] == evaluation.dataset_version.dataset.slug
            for column in ("labeled", "predicted", "tp", "fn", "fp"):
                assert int(row[column]) == stored[column]
            assert int(row["inputs"]) == stored["n"]
            for column in ("roc_auc", "precision", "recall", "f1"):
                assert float(row[column]) == stored[column]


def test_it_checks_ownership(client, trained_model, bob):
    version = trained_model.versions.get()
    one = evaluated(version, version.dataset_version)
    two = evaluated(version, more_emails(trained_model.app))
    client.force_login(bob)
    # Alice's app is not Bob's to open.
    assert client.get(COMPARE, ids_query(one, two)).status_code == 404
    assert client.get(LIST).status_code == 404
    # In an app of his own by the same name, her evaluations are no one's.
    App.objects.create(owner=bob, slug="spam-filter")
    for query in (ids_query(one, two), ids_query(one, two, format="csv")):
        response = client.get(COMPARE, query)
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/html")
        assert response.context["comparison"] is None
        body = response.content.decode()
        assert "2 of the chosen evaluations are not a finished evaluation of this app" in body
        assert "detector" not in body and "emails" not in body


@pytest.mark.parametrize(
    "ids",
    [
        [],
        ["first"],
        ["first", "first"],
        ["first", "nope"],
        ["first", "999999"],
        ["first", "²"],
        ["first", "-3"],
        ["first", str(2**70)],
    ],
)
def test_fewer_than_two_evaluations_say_so(alice_client, trained_model, ids):
    version = trained_model.versions.get()
    evaluation = evaluated(version, version.dataset_version)
    query = {"ids": [str(evaluation.pk) if i == "first" else i for i in ids]}
    response = alice_client.get(COMPARE, query)
    assert response.status_code == 200
    assert response.context["comparison"] is None
    assert "Choose at least two finished evaluations to compare" in response.content.decode()


def test_unfinished_evaluations_are_left_out(alice_client, trained_model):
    version = trained_model.versions.get()
    finished = evaluated(version, version.dataset_version)
    queued = Evaluation.objects.create(
        model_version=version, dataset_version=finished.dataset_version
    )
    response = alice_client.get(COMPARE, ids_query(finished, queued))
    assert response.status_code == 200
    body = response.content.decode()
    assert "1 of the chosen evaluations is not a finished evaluation of this app" in body
    assert "Choose at least two" in body


def test_the_list_shows_every_evaluation(alice_client, trained_model):
    empty = alice_client.get(LIST)
    assert empty.status_code == 200
    assert b"No evaluations yet" in empty.content and b"<b>Evaluate</b>" in empty.content

    version = trained_model.versions.get()
    finished = evaluated(version, version.dataset_version)
    queued = Evaluation.objects.create(
        model_version=version, dataset_version=more_emails(trained_model.app)
    )
    response = alice_client.get(LIST)
    assert response.status_code == 200
    body = response.content.decode()
    assert f'action="{COMPARE}"' in body and ">Compare</button>" in body
    assert f'name="ids" value="{finished.pk}" id="compare-{finished.pk}">' in body
    assert f'name="ids" value="{queued.pk}" id="compare-{queued.pk}" disabled' in body
    assert ">Evaluated</span>" in body and ">Waiting to evaluate</span>" in body
    assert "5-fold</span>" in body and "held-out</span>" in body
    summary = finished.metrics["summary"]
    assert f"{summary['macro_roc_auc']:.3f}" in body and f"{summary['macro_f1']:.3f}" in body
    assert f'href="{LIST}{finished.pk}/"' in body
    assert 'class="active"' in body and "Evaluations</span>" in body


def test_a_concept_of_one_model_only_is_shown_for_it_alone(alice_client, trained_model):
    first = trained_model.versions.get()
    trained_model.params["concepts"] = ["spam"]
    trained_model.save()
    version = training.start_training(trained_model)
    training.train(version.pk)
    emails = first.dataset_version
    both, spam_only = evaluated(first, emails), evaluated(version, emails)

    response = alice_client.get(COMPARE, ids_query(both, spam_only))
    comparison = response.context["comparison"]
    assert [c.concept for c in comparison.concepts] == ["spam", "ham"]
    ham = comparison.concepts[1]
    assert [row.metrics is None for row in ham.rows] == [False, True]
    assert [s.note for s in ham.roc.series] == ["", "not a concept of this model"]
    assert "Not a concept of this model." in response.content.decode()
    # Flips are counted on the concepts both versions have.
    assert {flip.concept for flip in comparison.flips.items} <= {"spam"}
    rows = list(
        csv.DictReader(
            io.StringIO(
                alice_client.get(COMPARE, ids_query(both, spam_only, format="csv")).content.decode()
            )
        )
    )
    assert [(r["model_version"], r["concept"]) for r in rows if r["scope"] == "concept"] == [
        ("1", "spam"),
        ("2", "spam"),
        ("1", "ham"),
    ]


def test_at_most_eight_are_compared_and_same_labels_are_told_apart(alice_client, trained_model):
    version = trained_model.versions.get()
    original = evaluated(version, version.dataset_version)
    copies = [
        Evaluation.objects.create(
            model_version=version,
            dataset_version=original.dataset_version,
            kfold=True,
            folds=original.folds,
            status=Evaluation.Status.EVALUATED,
            metrics=original.metrics,
            data=original.data,
        )
        for _ in range(8)
    ]
    query = {"ids": ["999999"] + ids_query(original, *copies)["ids"]}
    response = alice_client.get(COMPARE, query)
    assert response.status_code == 200
    comparison = response.context["comparison"]
    assert len(comparison.compared) == 8
    assert original.pk in {c.evaluation.pk for c in comparison.compared}
    assert copies[-1].pk not in {c.evaluation.pk for c in comparison.compared}
    body = response.content.decode()
    assert "At most 8 evaluations can be compared at once" in body
    assert "1 of the chosen evaluations is not a finished evaluation of this app" in body
    assert comparison.description == "Model detector v1 evaluated 8 times on emails v1."
    labels = [c.label for c in comparison.compared]
    assert len(set(labels)) == 8 and labels[0] == f"emails v1 (#{original.pk})"
    assert len({c.colour for c in comparison.compared}) == 8


def in_memory(pk: int, model: str, number: int, dataset: str, dataset_number: int, f1: float):
    """An evaluation that is never saved, with just what a comparison reads."""
    version = ModelVersion(
        pk=ord(model) * 100 + number,
        model=TrainableModel(pk=ord(model), slug=model),
        number=number,
    )
    dataset_version = DatasetVersion(
        pk=ord(dataset) * 100 + dataset_number,
        dataset=Dataset(slug=dataset),
        number=dataset_number,
    )
    curve = [[0.0, 0.0], [0.5, 1.0], [1.0, 1.0]]
    spam = {"concept": "spam", "f1": f1, "roc_auc": f1, "precision": 1.0, "recall": 1.0}
    metrics = {
        "concepts": [{**spam, "roc_curve": curve, "pr_curve": curve}],
        "summary": {"n_rows": 4, "macro_roc_auc": f1, "macro_f1": f1},
    }
    return Evaluation(
        pk=pk, model_version=version, dataset_version=dataset_version, metrics=metrics
    )


def test_labels_name_what_differs():
    pairs = [
        (in_memory(1, "a", 1, "x", 1, 0.5), in_memory(2, "a", 1, "y", 1, 0.7), "dataset"),
        (in_memory(1, "a", 1, "x", 1, 0.5), in_memory(2, "a", 1, "x", 2, 0.7), "dataset"),
        (in_memory(1, "a", 1, "x", 1, 0.5), in_memory(2, "b", 1, "x", 1, 0.7), "model"),
        (in_memory(1, "a", 2, "x", 1, 0.5), in_memory(2, "b", 1, "y", 1, 0.7), "both"),
    ]
    labels = {
        "dataset": [["x v1", "y v1"], ["x v1", "x v2"]],
        "model": [["a v1", "b v1"]],
        "both": [["a v2 on x v1", "b v1 on y v1"]],
    }
    for one, two, differs in pairs:
        comparison = comparing.compare([two, one])
        assert comparison.differs == differs
        assert [c.label for c in comparison.compared] in labels[differs]
        assert comparison.flips is None  # not two versions of one model on one dataset
    assert comparison.description == (
        "2 evaluations of different model versions on different dataset versions: "
        "a v2 on x v1; b v1 on y v1."
    )
    (spam,) = comparison.concepts
    assert [sorted(row.best) for row in spam.rows] == [[], ["f1", "roc_auc"]]
    assert spam.roc.series[0].points == "52.0,252.0 172.0,12.0 292.0,12.0"
    assert spam.roc.diagonal and not spam.pr.diagonal

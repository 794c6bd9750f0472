import hashlib

import pytest

from portal import labels
from portal.models import (
    Annotation,
    App,
    Concept,
    Dataset,
    DatasetVersion,
    DatasetVersionRow,
    Input,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def train(app):
    return Dataset.objects.create(app=app, slug="train")


def make_inputs(app, n, prefix="text"):
    texts = [f"{prefix} {i}" for i in range(n)]
    return Input.objects.bulk_create(
        Input(app=app, text=text, text_hash=hashlib.sha256(text.encode()).hexdigest())
        for text in texts
    )


def label_of(item, concept):
    return (
        Annotation.objects.filter(input=item, concept=concept)
        .values_list("value", flat=True)
        .first()
    )


def test_it_sets_changes_and_removes_a_label(app, spam, alice):
    (item,) = make_inputs(app, 1)
    assert labels.set_label(item, spam, 1, 0, alice)
    assert label_of(item, spam) == 1
    assert labels.set_label(item, spam, 0, 1, alice)
    assert label_of(item, spam) == 0
    assert labels.set_label(item, spam, None, 2, alice)
    assert label_of(item, spam) is None
    item.refresh_from_db()
    assert item.revision == 3


def test_it_records_the_author(app, spam, alice):
    (item,) = make_inputs(app, 1)
    labels.set_label(item, spam, 1, 0, alice)
    assert Annotation.objects.get(input=item).author == alice


def test_a_stale_revision_changes_nothing(app, spam, ham, alice):
    (item,) = make_inputs(app, 1)
    labels.set_label(item, ham, 1, 0, alice)  # the other tab saved first
    assert not labels.set_label(item, spam, 1, 0, alice)
    assert label_of(item, spam) is None
    assert label_of(item, ham) == 1
    item.refresh_from_db()
    assert item.revision == 1


def test_it_refuses_a_concept_of_another_app(app, alice, bob):
    (item,) = make_inputs(app, 1)
    other = Concept.objects.create(app=App.objects.create(owner=bob, slug="x"), slug="spam")
    with pytest.raises(ValueError):
        labels.set_label(item, other, 1, 0, alice)
    assert not Annotation.objects.exists()


def test_it_labels_a_selection_overwriting_opposite_labels(app, spam, ham, alice):
    items = make_inputs(app, 4)
    labels.set_label(items[0], spam, 0, 0, alice)
    labels.set_label(items[1], spam, 1, 0, alice)
    labels.set_label(items[2], ham, 1, 0, alice)
    selection = Input.objects.filter(pk__in=[i.pk for i in items[:3]])
    assert labels.label_inputs(selection, spam, 1, alice) == 3
    assert [label_of(i, spam) for i in items] == [1, 1, 1, None]
    assert label_of(items[2], ham) == 1
    revisions = dict(Input.objects.values_list("pk", "revision"))
    # Only the inputs whose labels changed tell other tabs so.
    assert [revisions[i.pk] for i in items] == [2, 1, 2, 0]


def test_it_labels_a_selection_defined_by_the_labels_it_changes(app, spam, alice):
    items = make_inputs(app, 3)
    labels.set_label(items[0], spam, 0, 0, alice)
    labels.set_label(items[1], spam, 0, 0, alice)
    negatives = Input.objects.filter(annotations__concept=spam, annotations__value=0)
    assert labels.label_inputs(negatives, spam, 1, alice) == 2
    assert [label_of(i, spam) for i in items] == [1, 1, None]


def test_bulk_labeling_takes_a_few_queries_however_many_inputs(
    app, spam, alice, django_assert_max_num_queries
):
    make_inputs(app, 2000)
    # Batched: SQLite takes about 160 rows (of 6 fields) per INSERT.
    with django_assert_max_num_queries(6 + 2000 // 125):
        assert labels.label_inputs(Input.objects.filter(app=app), spam, 1, alice) == 2000
    assert Annotation.objects.filter(concept=spam, value=1).count() == 2000


def test_it_never_labels_inputs_of_another_app(app, spam, alice, bob):
    other = make_inputs(App.objects.create(owner=bob, slug="b"), 2)
    labels.label_inputs(Input.objects.all(), spam, 1, alice)
    assert not Annotation.objects.filter(input__in=other).exists()


def test_it_removes_labels(app, spam, ham, alice):
    items = make_inputs(app, 3)
    labels.label_inputs(Input.objects.all(), spam, 1, alice)
    labels.set_label(items[2], ham, 0, 1, alice)
    assert labels.unlabel_inputs(Input.objects.filter(pk__in=[items[0].pk, items[2].pk]), spam) == 2
    assert [label_of(i, spam) for i in items] == [None, 1, None]
    assert label_of(items[2], ham) == 0


def test_it_adds_to_and_removes_from_a_dataset(app, train, alice):
    items = make_inputs(app, 3)
    train.inputs.add(items[0])
    assert labels.add_to_dataset(Input.objects.all(), train) == 3
    assert train.inputs.count() == 3
    assert labels.remove_from_dataset(Input.objects.filter(pk=items[1].pk), train) == 1
    assert set(train.inputs.all()) == {items[0], items[2]}


def test_it_never_puts_inputs_of_another_app_in_a_dataset(app, train, bob):
    make_inputs(App.objects.create(owner=bob, slug="b"), 2)
    assert labels.add_to_dataset(Input.objects.all(), train) == 0
    assert not train.inputs.exists()


def test_it_deletes_inputs_with_their_labels_and_memberships(app, spam, train, alice):
    items = make_inputs(app, 3)
    labels.label_inputs(Input.objects.all(), spam, 1, alice)
    train.inputs.add(*items)
    version = DatasetVersion.objects.create(dataset=train, number=1)
    row = DatasetVersionRow.objects.create(version=version, input=items[0], text="x", text_hash="x")
    # The selection is defined by a label that the deletion removes.
    assert (
        labels.delete_inputs(Input.objects.filter(annotations__concept=spam).order_by("pk")[:2])
        == 2
    )
    assert list(Input.objects.all()) == [items[2]]
    assert Annotation.objects.count() == 1
    assert list(train.inputs.all()) == [items[2]]
    row.refresh_from_db()
    assert row.input is None  # the snapshot outlives the input


def test_it_knows_every_table_that_points_at_inputs():
    # If this fails, a new model refers to Input: teach labels.delete_inputs about it.
    dependents = {
        field.related_model
        for field in Input._meta.get_fields(include_hidden=True)
        if field.auto_created and not field.concrete and field.one_to_many
    }
    assert dependents == set(labels.INPUT_DEPENDENTS)


def test_deleting_many_inputs_takes_few_queries(
    app, spam, train, alice, django_assert_max_num_queries
):
    make_inputs(app, 2000)
    labels.label_inputs(Input.objects.all(), spam, 1, alice)
    train.inputs.add(*Input.objects.all())
    # Four statements per 900 inputs.
    with django_assert_max_num_queries(3 + 4 * 3):
        assert labels.delete_inputs(Input.objects.filter(app=app)) == 2000
    assert not Input.objects.exists()
    assert not Annotation.objects.exists()

"""Changing labels and dataset membership, for one input or for a whole selection.

Bulk operations take a queryset of inputs and run a few set-based statements, so
"all 100,000 matching" costs about as many queries as a page of 50. Every operation
first narrows the queryset to the concept's or dataset's app, so a selection can never
reach into another app.
"""

from collections.abc import Iterator

from django.db import transaction
from django.db.models import Exists, F, OuterRef, QuerySet
from django.utils import timezone

from portal.models import Annotation, Concept, Dataset, DatasetVersionRow, Input

# Rows per INSERT, and IDs per "IN (...)" list: SQLite allows 999 parameters a statement.
BATCH = 900


def _batches(ids: list[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), BATCH):
        yield ids[start : start + BATCH]


def _bump(inputs: QuerySet[Input]) -> None:
    """Tell other tabs that these inputs' labels changed (one UPDATE)."""
    Input.objects.filter(pk__in=inputs.values("pk")).update(revision=F("revision") + 1)


def set_label(
    item: Input,
    concept: Concept,
    value: int | None,
    expected_revision: int,
    author,
    by_hand: bool = True,
) -> bool:
    """Give `item` the label concept=value (1, 0, or None to remove it); `by_hand`: given
    in the pages (the API passes False).

    Applies only if nobody changed the input's labels since the caller saw
    `expected_revision`; returns False, changing nothing, if somebody did.
    """
    if concept.app_id != item.app_id:
        raise ValueError("The concept belongs to another app.")
    with transaction.atomic():
        claimed = Input.objects.filter(pk=item.pk, revision=expected_revision).update(
            revision=F("revision") + 1
        )
        if not claimed:
            return False
        if value is None:
            Annotation.objects.filter(input=item, concept=concept).delete()
        else:
            Annotation.objects.update_or_create(
                input=item,
                concept=concept,
                defaults={
                    "value": value,
                    "author": author,
                    "created": timezone.now(),
                    "by_hand": by_hand,
                },
            )
    item.revision = expected_revision + 1
    return True


def label_inputs(inputs: QuerySet[Input], concept: Concept, value: int, author) -> int:
    """Label every input with concept=value, replacing an opposite label; returns how many.
    Labels given so are by hand: a person chose them in the pages."""
    inputs = inputs.filter(app_id=concept.app_id)
    has_label = Annotation.objects.filter(input=OuterRef("pk"), concept=concept)
    with transaction.atomic():
        total = inputs.count()
        # Only the inputs whose label changes; the filter may depend on these very labels,
        # so it is evaluated before anything is written.
        _bump(inputs.exclude(Exists(has_label.filter(value=value))))
        Annotation.objects.filter(concept=concept, input__in=inputs.values("pk")).exclude(
            value=value
        ).update(value=value, author=author, created=timezone.now(), by_hand=True)
        missing = list(inputs.exclude(Exists(has_label)).values_list("pk", flat=True))
        for batch in _batches(missing):
            Annotation.objects.bulk_create(
                [
                    Annotation(
                        input_id=pk, concept=concept, value=value, author=author, by_hand=True
                    )
                    for pk in batch
                ],
                ignore_conflicts=True,  # a label added meanwhile in another tab wins
            )
    return total


def unlabel_inputs(inputs: QuerySet[Input], concept: Concept) -> int:
    """Remove the concept's label, positive or negative; returns how many inputs had it."""
    inputs = inputs.filter(app_id=concept.app_id)
    has_label = Annotation.objects.filter(input=OuterRef("pk"), concept=concept)
    with transaction.atomic():
        _bump(inputs.filter(Exists(has_label)))
        deleted, _ = Annotation.objects.filter(
            concept=concept, input__in=inputs.values("pk")
        ).delete()
    return deleted


def add_to_dataset(inputs: QuerySet[Input], dataset: Dataset) -> int:
    """Put the inputs in the dataset (those already in it stay); returns how many were selected."""
    inputs = inputs.filter(app_id=dataset.app_id)
    member = Dataset.inputs.through
    with transaction.atomic():
        total = inputs.count()
        missing = list(inputs.exclude(datasets=dataset).values_list("pk", flat=True))
        for batch in _batches(missing):
            member.objects.bulk_create(
                [member(dataset_id=dataset.pk, input_id=pk) for pk in batch],
                ignore_conflicts=True,
            )
    return total


def remove_from_dataset(inputs: QuerySet[Input], dataset: Dataset) -> int:
    """Take the inputs out of the dataset (they stay in the app); returns how many were in it."""
    inputs = inputs.filter(app_id=dataset.app_id)
    member = Dataset.inputs.through
    deleted, _ = member.objects.filter(dataset=dataset, input__in=inputs.values("pk")).delete()
    return deleted


def delete_inputs(inputs: QuerySet[Input]) -> int:
    """Delete the inputs with their labels and dataset memberships; returns how many.

    Dataset version rows keep their copy of the text and lose only the link.
    """
    with transaction.atomic():
        # The selection may be defined by the labels and datasets that the deletion
        # removes, so it is fixed as a list of IDs first.
        ids = list(inputs.values_list("pk", flat=True))
        for batch in _batches(ids):
            _delete_batch(batch)
    return len(ids)


# Every table that points at inputs (tests/test_labels.py checks this list is complete).
INPUT_DEPENDENTS = (Annotation, Dataset.inputs.through, DatasetVersionRow)


def _delete_batch(ids: list[int]) -> None:
    # Django's collector would load every input and delete them 100 at a time; what
    # points at an input is known, so one statement per table does it.
    Annotation.objects.filter(input__in=ids).delete()
    Dataset.inputs.through.objects.filter(input__in=ids).delete()
    DatasetVersionRow.objects.filter(input__in=ids).update(input=None)
    Input.objects.filter(pk__in=ids)._raw_delete(Input.objects.db)

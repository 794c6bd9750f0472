"""A corrected prediction back into a dataset: the text becomes a labeled input.

Try your own text and the API's feedback route both end here. A text already in the
app is relabeled (and put in the dataset) rather than added twice; a new one goes
through `importing.add_inputs`, like an upload, so its embedding is scheduled.
"""

from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef

from portal import importing, labels
from portal.csv_io import ParsedRow
from portal.models import Annotation, App, Concept, Dataset, Input, text_hash


class FeedbackError(ValueError):
    """The feedback can't be saved; the message says why in plain words."""


@dataclass(frozen=True)
class Feedback:
    input: Input
    created: bool  # False: the text was already in the app and was relabeled


def clean_text(text: str) -> str:
    text = text.strip()
    if not text:
        raise FeedbackError("the text is empty")
    if len(text) > settings.PORTAL_MAX_TEXT_LENGTH:
        raise FeedbackError(
            f"the text is {len(text):,} characters long; "
            f"the limit is {settings.PORTAL_MAX_TEXT_LENGTH:,}"
        )
    if "\x00" in text:
        raise FeedbackError("the text contains a NUL character")
    return text


def app_concepts(app: App, positive: list[str], negative: list[str]) -> dict[str, Concept]:
    """The named concepts of the app; an unknown or doubly named one is an error."""
    both = sorted(set(positive) & set(negative))
    if both:
        raise FeedbackError(f"concept {both[0]} is both positive and negative")
    wanted = set(positive) | set(negative)
    found = {c.slug: c for c in Concept.objects.filter(app=app, slug__in=wanted)}
    unknown = sorted(wanted - found.keys())
    if unknown:
        raise FeedbackError(f"unknown concepts: {', '.join(unknown[:10])}; create them first")
    return found


def add(
    app: App, dataset: Dataset, text: str, positive: list[str], negative: list[str], author
) -> Feedback:
    """Put `text` in `dataset` labeled with the positive and negative concepts (IDs); an
    input that already has the text keeps the labels these don't name."""
    if dataset.app_id != app.pk:
        raise ValueError("The dataset belongs to another app.")
    text = clean_text(text)
    concepts = app_concepts(app, positive, negative)
    digest = text_hash(text)
    with transaction.atomic():
        member = Dataset.inputs.through.objects.filter(dataset=dataset, input=OuterRef("pk"))
        # The same text twice in an app (uploads to different datasets): the dataset's wins.
        existing = (
            Input.objects.filter(app=app, text_hash=digest)
            .annotate(in_dataset=Exists(member))
            .order_by("-in_dataset", "pk")
            .first()
        )
        if existing is None:
            row = ParsedRow(
                row=1,
                text=text,
                external_id="",
                concepts=tuple(positive),
                negative_concepts=tuple(negative),
                metadata={},
            )
            importing.add_inputs(app, [row], datasets=[dataset], concepts=[], author=author)
            item = Input.objects.filter(app=app, text_hash=digest).latest("pk")
            return Feedback(item, created=True)
        one = Input.objects.filter(pk=existing.pk)
        for slugs, value in ((positive, Annotation.POSITIVE), (negative, Annotation.NEGATIVE)):
            for slug in slugs:
                labels.label_inputs(one, concepts[slug], value, author)
        labels.add_to_dataset(one, dataset)
    return Feedback(Input.objects.get(pk=existing.pk), created=False)

"""Label next: one unlabeled input of a dataset at a time, with the model's suggestion."""

from dataclasses import dataclass
from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_POST

from portal import labeling, suggesting
from portal.access import get_app, get_dataset
from portal.ids import as_number
from portal.labeling import LabelingError, Progress
from portal.models import App, Concept, Dataset, Input, ModelVersion

CARD = "portal/_label_next_card.html"
ROUND_AGAIN = "You have seen every unlabeled input: the ones you skipped come round again."


@dataclass
class Choice:
    """A concept on the card: its key, whether it is selected, the model's probability."""

    concept: Concept
    key: int | None
    selected: bool
    probability: float | None

    @property
    def percent(self) -> int:
        return round(100 * (self.probability or 0.0))


def _next_card(
    progress: Progress, dataset: Dataset, version: ModelVersion | None, just: int | None = None
) -> tuple[labeling.Card | None, str]:
    """The next card and a note for the person; once everything left was skipped, the
    skipped inputs come round again (but not the one skipped just now, if others remain)."""
    card = labeling.pick(dataset, version, set(progress.skipped))
    if card is not None or not progress.skipped:
        return card, ""
    progress.skipped = [just] if just is not None else []
    progress.save()
    card = labeling.pick(dataset, version, set(progress.skipped)) or labeling.pick(
        dataset, version, set()
    )
    return card, ROUND_AGAIN


def _context(
    request: HttpRequest,
    app: App,
    dataset: Dataset | None,
    show: Input | None = None,
    chosen: list[int] | None = None,
    just: int | None = None,
) -> dict:
    """Everything the page and the card need; `show` puts a given input on the card
    (with the concepts `chosen` for it), else the next one is picked."""
    concepts = list(Concept.objects.filter(app=app).only("id", "slug", "name"))
    context = {"app": app, "section": "label-next", "dataset": dataset, "concepts": concepts}
    if dataset is None or not concepts:
        return context
    version = suggesting.latest_version(app, dataset)
    progress = Progress(request.session, dataset)
    note = ""
    if show is not None:
        card = labeling.card_for(show, version)
        if chosen is not None:  # an undone accept: what the person had chosen
            card.suggested = {c.slug for c in concepts if c.pk in chosen}
    else:
        card, note = _next_card(progress, dataset, version, just)
    choices = []
    if card is not None:
        choices = [
            Choice(
                concept=concept,
                key=number if number <= 9 else None,
                selected=concept.slug in card.suggested,
                probability=card.probabilities.get(concept.slug),
            )
            for number, concept in enumerate(concepts, start=1)
        ]
    running = labeling.in_training(version.model) if version is not None else None
    return {
        **context,
        "version": version,
        "exclusive": _exclusive(version),
        "card": card,
        "choices": choices,
        "note": note,
        "can_undo": bool(progress.history),
        "total": dataset.inputs.count(),
        "remaining": labeling.unlabeled(dataset).count(),
        "labeled_today": labeling.labeled_today(dataset, request.user),
        "retrain_every": progress.retrain_every,
        "retrain_choices": labeling.RETRAIN_CHOICES,
        "retraining": (
            f"Model {version.model.slug} v{running.number} is training on your labels; "
            "suggestions switch to it when it is done."
            if running is not None
            else ""
        ),
    }


@require_GET
def label_next(request: HttpRequest, app_id: str) -> HttpResponse:
    app = get_app(request, app_id)
    datasets = list(Dataset.objects.filter(app=app).only("id", "app_id", "slug"))
    slug = request.GET.get("dataset", "")
    dataset = get_dataset(app, slug) if slug else (datasets[0] if datasets else None)
    show = chosen = None
    wanted = as_number(request.GET.get("input", ""))
    if dataset is not None and wanted is not None:
        # Only an unlabeled input of the dataset can be shown; anything else is picked.
        show = labeling.unlabeled(dataset).filter(pk=wanted).first()
    if show is not None and "chosen" in request.GET:  # an undone accept, without JavaScript
        numbers = (as_number(n) for n in request.GET["chosen"].split(","))
        chosen = [n for n in numbers if n is not None]
    context = _context(request, app, dataset, show=show, chosen=chosen)
    context["datasets"] = datasets
    return render(request, "portal/label_next.html", context)


def _answer(
    request: HttpRequest,
    app: App,
    dataset: Dataset,
    *,
    message: str = "",
    error: str = "",
    show: Input | None = None,
    chosen: list[int] | None = None,
    just: int | None = None,
    retraining: str = "",
) -> HttpResponse:
    """The next card over htmx; without JavaScript, back to the page with a message."""
    if not request.htmx:
        if error:
            messages.error(request, error)
        elif message:
            messages.success(request, message)
        if retraining:
            messages.info(request, retraining)
        query = {"dataset": dataset.slug, **({"input": show.pk} if show else {})}
        if chosen is not None:
            query["chosen"] = ",".join(str(pk) for pk in chosen)
        return redirect(f"{reverse('portal:label-next', args=[app.slug])}?{urlencode(query)}")
    context = _context(request, app, dataset, show=show, chosen=chosen, just=just)
    context.update(message=message, error=error)
    if retraining:
        context["retraining"] = retraining
    return render(request, CARD, context)


def _posted(request: HttpRequest, app_id: str) -> tuple[App, Dataset]:
    app = get_app(request, app_id)
    return app, get_dataset(app, request.POST.get("dataset", ""))


def _posted_input(request: HttpRequest, dataset: Dataset) -> Input:
    """The posted input, which must be one of the dataset's; LabelingError otherwise."""
    pk = as_number(request.POST.get("input", ""))
    item = (
        Input.objects.filter(app_id=dataset.app_id, datasets=dataset, pk=pk).first()
        if pk is not None
        else None
    )
    if item is None:
        raise LabelingError(f"That input is not in dataset {dataset.slug}: nothing was saved.")
    return item


def _exclusive(version: ModelVersion | None) -> bool:
    """Whether the model whose suggestions the card shows has mutually exclusive concepts."""
    return bool(version is not None and version.params.get("concepts_mutually_exclusive"))


def _saved_message(chosen: list[Concept], negatives: list[Concept]) -> str:
    parts = []
    if chosen:
        parts.append(", ".join(c.slug for c in chosen))
    if negatives:
        parts.append("not " + ", ".join(c.slug for c in negatives))
    return f"Saved: {'; '.join(parts)}."


@require_POST
def label_accept(request: HttpRequest, app_id: str) -> HttpResponse:
    app, dataset = _posted(request, app_id)
    try:
        item = _posted_input(request, dataset)
        revision = as_number(request.POST.get("revision", ""))
        if revision is None:
            raise LabelingError("The input's revision is missing: nothing was saved.")
        by_slug = {c.slug: c for c in Concept.objects.filter(app=app)}
        slugs = list(dict.fromkeys(request.POST.getlist("concepts")))
        unknown = [slug for slug in slugs if slug not in by_slug]
        if unknown:
            raise LabelingError(
                f"There is no concept {unknown[0]!r} in this app: nothing was saved."
            )
        chosen = [by_slug[slug] for slug in slugs]
        version = suggesting.latest_version(app, dataset)
        model_concepts = (
            [by_slug[s] for s in suggesting.concepts(version) if s in by_slug] if version else []
        )
        several = [c for c in chosen if c in model_concepts]
        if _exclusive(version) and len(several) > 1 and not request.POST.get("several"):
            raise LabelingError(
                f"Model {version.model.slug}'s concepts are mutually exclusive: choose one of "
                f"{', '.join(c.slug for c in several)}, or tick “Several concepts on purpose”. "
                "Nothing was saved."
            )
        saved = labeling.accept(item, revision, chosen, model_concepts, request.user)
    except LabelingError as exc:
        return _answer(request, app, dataset, error=str(exc))
    progress = Progress(request.session, dataset)
    progress.accepted(item, saved)
    negatives = [c for c in model_concepts if c not in chosen]
    retraining = labeling.retrain(progress, dataset, version)
    return _answer(
        request, app, dataset, message=_saved_message(chosen, negatives), retraining=retraining
    )


@require_POST
def label_skip(request: HttpRequest, app_id: str) -> HttpResponse:
    app, dataset = _posted(request, app_id)
    try:
        item = _posted_input(request, dataset)
    except LabelingError as exc:
        return _answer(request, app, dataset, error=str(exc))
    progress = Progress(request.session, dataset)
    progress.skip(item)
    retraining = labeling.retrain(progress, dataset, suggesting.latest_version(app, dataset))
    return _answer(request, app, dataset, message="Skipped.", just=item.pk, retraining=retraining)


@require_POST
def label_retrain(request: HttpRequest, app_id: str) -> HttpResponse:
    """The automatic retraining setting, kept per dataset in the person's session."""
    app, dataset = _posted(request, app_id)
    every = as_number(request.POST.get("retrain", ""))
    if every not in labeling.RETRAIN_CHOICES:
        return _answer(request, app, dataset, error="Choose off, 10, 25 or 50 labels.")
    progress = Progress(request.session, dataset)
    progress.retrain_every = every
    progress.save()
    message = f"Retraining after every {every} labels." if every else "Automatic retraining is off."
    return _answer(request, app, dataset, message=message)


@require_POST
def label_undo(request: HttpRequest, app_id: str) -> HttpResponse:
    app, dataset = _posted(request, app_id)
    try:
        item, chosen = Progress(request.session, dataset).undo(dataset)
    except LabelingError as exc:
        return _answer(request, app, dataset, error=str(exc))
    return _answer(request, app, dataset, message="Undone.", show=item, chosen=chosen)


urlpatterns = [
    path("", label_next, name="label-next"),
    path("accept/", label_accept, name="label-next-accept"),
    path("skip/", label_skip, name="label-next-skip"),
    path("undo/", label_undo, name="label-next-undo"),
    path("retrain/", label_retrain, name="label-next-retrain"),
]

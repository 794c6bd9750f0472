"""Predictions for the page, the API and batch jobs: one code path.

The process keeps the base embedding models (see `classifier.embedders`) and the most
recently used heads in memory, so a warm prediction costs one `encode` and one matrix
product. Heads are keyed by version, so a newly trained version is used at once.
"""

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from django.conf import settings

from classifier import embedders
from classifier.head import ConceptHead, HeadFormatError
from classifier.hybrid import HybridHead, head_proba, load_head
from portal.ids import as_number
from portal.models import Concept, ModelVersion, TrainableModel

HEAD_CACHE_SIZE = 32

# The in-process head cache: the one piece of module-level mutable state, behind `cached_head`.
_heads: OrderedDict[int, ConceptHead | HybridHead] = OrderedDict()
_heads_lock = threading.Lock()


class PredictionError(ValueError):
    """The request can't be answered; the message says why in plain words."""


@dataclass(frozen=True)
class ConceptValue:
    id: str
    name: str
    value: float


@dataclass(frozen=True)
class Prediction:
    version: ModelVersion
    outputs: list[list[ConceptValue]]
    seconds: float
    thresholds: dict[str, float]  # the concept thresholds that applied


def cached_head(version: ModelVersion) -> ConceptHead | HybridHead:
    with _heads_lock:
        head = _heads.get(version.pk)
        if head is not None:
            _heads.move_to_end(version.pk)
            return head
    data = ModelVersion.objects.values_list("head", flat=True).get(pk=version.pk)
    try:
        head = load_head(bytes(data or b""))
    except HeadFormatError as exc:
        raise PredictionError(
            f"the stored head of version {version.number} can't be read; train the model again"
        ) from exc
    with _heads_lock:
        _heads[version.pk] = head
        while len(_heads) > HEAD_CACHE_SIZE:
            _heads.popitem(last=False)
    return head


def check_texts(texts: object) -> list[str]:
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise PredictionError("texts must be a list of strings")
    if not texts:
        raise PredictionError("give at least one text")
    limit = settings.PORTAL_MAX_PREDICT_TEXTS
    if len(texts) > limit:
        raise PredictionError(f"at most {limit} texts per request; this one has {len(texts)}")
    for number, text in enumerate(texts, start=1):
        if not text.strip():
            raise PredictionError(f"text {number} is empty")
        if len(text) > settings.PORTAL_MAX_TEXT_LENGTH:
            raise PredictionError(
                f"text {number} is {len(text):,} characters long; "
                f"the limit is {settings.PORTAL_MAX_TEXT_LENGTH:,}"
            )
    return [text.strip() for text in texts]


@dataclass(frozen=True)
class InferenceSettings:
    min_value: float
    max_concepts: int
    select_concepts: list[str]
    # Per-concept thresholds saved from an evaluation; they replace min_value for their concept.
    concept_thresholds: dict[str, float]

    def shows(self, concept: str, value: float) -> bool:
        if self.select_concepts and concept not in self.select_concepts:
            return False
        return value >= self.concept_thresholds.get(concept, self.min_value)


def inference_settings(version: ModelVersion, overrides: dict | None) -> InferenceSettings:
    """The version's inference settings, with valid overrides."""
    merged = {**version.params.get("inference_params", {}), **(overrides or {})}
    try:
        min_value = float(merged.get("min_value") or 0.0)
        max_concepts = int(merged.get("max_concepts") or 20)
    except (TypeError, ValueError):
        raise PredictionError(
            "min_value must be a number and max_concepts a whole number"
        ) from None
    select = merged.get("select_concepts") or []
    thresholds = merged.get("concept_thresholds") or {}
    if not 0.0 <= min_value <= 1.0:
        raise PredictionError("min_value must be between 0 and 1")
    if max_concepts < 1:
        raise PredictionError("max_concepts must be at least 1")
    if not isinstance(select, list) or not all(isinstance(c, str) for c in select):
        raise PredictionError("select_concepts must be a list of concept IDs")
    if not isinstance(thresholds, dict) or not all(
        isinstance(v, int | float) and 0.0 <= v <= 1.0 for v in thresholds.values()
    ):
        raise PredictionError("concept_thresholds must map concept IDs to numbers from 0 to 1")
    return InferenceSettings(min_value, max_concepts, select, thresholds)


def pick_version(model: TrainableModel, number: object = None) -> ModelVersion:
    # The head is read (once, then cached) by `cached_head`; the log is never needed here.
    versions = model.versions.filter(status=ModelVersion.Status.TRAINED).defer("head", "log")
    if number in (None, ""):
        version = versions.order_by("-number").first()
        if version is None:
            raise PredictionError(f"model {model.slug} has no trained version yet")
        return version
    wanted = as_number(number)
    version = versions.filter(number=wanted).first() if wanted is not None else None
    if version is None:
        raise PredictionError(f"model {model.slug} has no trained version {number}")
    return version


def predict(
    model: TrainableModel,
    texts: object,
    version_number: object = None,
    inference_params: dict | None = None,
) -> Prediction:
    started = time.perf_counter()
    clean = check_texts(texts)
    version = pick_version(model, version_number)
    shown = inference_settings(version, inference_params)
    base_model = version.params.get("train_params", {}).get("base_embed_model")
    head = cached_head(version)
    X = embedders.get_embedder(base_model).encode(clean)
    probabilities = head_proba(head, clean, X)
    names = dict(Concept.objects.filter(app_id=model.app_id).values_list("slug", "name"))
    outputs = []
    for row in probabilities:
        values = [
            ConceptValue(slug, names.get(slug, slug), round(float(value), 6))
            for slug, value in zip(head.concepts, row, strict=True)
            if shown.shows(slug, value)
        ]
        values.sort(key=lambda c: c.value, reverse=True)
        outputs.append(values[: shown.max_concepts])
    return Prediction(version, outputs, time.perf_counter() - started, shown.concept_thresholds)

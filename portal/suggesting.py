"""The latest trained model's scores for inputs already in an app.

Label next, the explorer's suggestions and similar features ask "what does the model
think of these inputs?". The answer reads the inputs' cached embeddings (embedding what
is missing) and applies the version's head, as a prediction does.

    version = latest_version(app)
    probabilities = scores(version, inputs)  # rows: inputs in order; columns: version.concepts
"""

from collections.abc import Sequence

import numpy as np

from classifier.hybrid import head_proba
from portal import embedding, prediction
from portal.models import App, Dataset, Input, ModelVersion


def latest_version(app: App, dataset: Dataset | None = None) -> ModelVersion | None:
    """The app's most recently trained model version; with `dataset`, one trained on a
    version of that dataset if there is one."""
    versions = ModelVersion.objects.filter(
        model__app=app, status=ModelVersion.Status.TRAINED
    ).defer("head", "log")
    if dataset is not None:
        on_dataset = versions.filter(dataset_version__dataset=dataset)
        if on_dataset.exists():
            versions = on_dataset
    return versions.select_related("model").order_by("-finished", "-pk").first()


def base_model(version: ModelVersion) -> str:
    return version.params.get("train_params", {}).get("base_embed_model")


def exclusive(version: ModelVersion) -> bool:
    return bool(version.params.get("concepts_mutually_exclusive"))


def scores(version: ModelVersion, inputs: Sequence[Input]) -> np.ndarray:
    """Probabilities, one row per input (in order), one column per concept of
    `version.concepts`, the order of the head's concepts."""
    head = prediction.cached_head(version)
    if not inputs:
        return np.zeros((0, len(head.concepts)))
    texts = [i.text for i in inputs]
    X = embedding.vectors(base_model(version), texts, [i.text_hash for i in inputs])
    return head_proba(head, texts, X)


def concepts(version: ModelVersion) -> list[str]:
    """The concept IDs of the version's head, in the order of `scores`' columns."""
    return list(prediction.cached_head(version).concepts)

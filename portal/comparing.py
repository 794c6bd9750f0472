"""Compare finished evaluations: per-concept numbers side by side, curves overlaid, and the
inputs whose prediction changed between two versions of one model.

Everything here reads what the evaluations stored (`metrics`, and for the flipped inputs
the scores of `portal.evaluating.load_scores`); nothing is recomputed.
"""

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from classifier.evaluation import known_labels
from portal.evaluating import EvaluationError, load_scores
from portal.models import DatasetVersionRow, Evaluation

THRESHOLD = 0.5  # the threshold every evaluation's metrics were computed at
FLIP_LIMIT = 100
# Distinguishable on white and for most colour-blind readers (after Okabe and Ito).
PALETTE = ["#2563eb", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#6b7280", "#7c3aed"]
MAX_COMPARED = len(PALETTE)
BEST_OF = ("roc_auc", "recall", "precision", "f1")

# Curve geometry, in SVG pixels: a square plot with room for ticks and axis titles.
PLOT_SIZE = 240
PLOT_LEFT, PLOT_TOP, PLOT_RIGHT, PLOT_BOTTOM = 52, 12, 16, 46
TICKS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


@dataclass(frozen=True)
class Compared:
    """One evaluation in the comparison, with the label and colour it is shown with."""

    evaluation: Evaluation
    label: str
    colour: str

    @property
    def summary(self) -> dict[str, Any]:
        return self.evaluation.metrics["summary"]


@dataclass(frozen=True)
class ConceptRow:
    """One evaluation's numbers for one concept; `metrics` is None when its model doesn't
    have the concept. `best` names the columns where it beats the others."""

    compared: Compared
    metrics: dict[str, Any] | None
    best: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Series:
    label: str
    colour: str
    points: str  # SVG polyline points; "" when there is no curve
    note: str = ""
    width: float = 2.5  # stroke width: the earlier, the wider, so lines that coincide all show


def _x(value: float) -> float:
    return PLOT_LEFT + value * PLOT_SIZE


def _y(value: float) -> float:
    return PLOT_TOP + (1 - value) * PLOT_SIZE


@dataclass(frozen=True)
class Tick:
    label: str
    x: float  # where the value sits on the x axis
    y: float  # and on the y axis


@dataclass(frozen=True)
class Plot:
    """A chart of curves in the unit square, with the geometry the template draws it by."""

    title: str
    x_title: str
    y_title: str
    series: list[Series]
    diagonal: bool = False  # the ROC curve of a guess

    size: ClassVar[int] = PLOT_SIZE
    left: ClassVar[int] = PLOT_LEFT
    top: ClassVar[int] = PLOT_TOP
    right: ClassVar[int] = PLOT_LEFT + PLOT_SIZE
    bottom: ClassVar[int] = PLOT_TOP + PLOT_SIZE
    width: ClassVar[int] = PLOT_LEFT + PLOT_SIZE + PLOT_RIGHT
    height: ClassVar[int] = PLOT_TOP + PLOT_SIZE + PLOT_BOTTOM
    middle: ClassVar[float] = PLOT_LEFT + PLOT_SIZE / 2
    centre: ClassVar[float] = PLOT_TOP + PLOT_SIZE / 2
    ticks: ClassVar[list[Tick]] = [Tick(f"{v:g}", _x(v), _y(v)) for v in TICKS]


@dataclass(frozen=True)
class ConceptComparison:
    concept: str
    rows: list[ConceptRow]
    roc: Plot
    pr: Plot


@dataclass(frozen=True)
class Flip:
    """An input and concept whose prediction at THRESHOLD differs between the versions."""

    row: int  # DatasetVersionRow primary key
    text: str
    concept: str
    label: int  # 1 positive, 0 negative, -1 unknown
    before: float
    after: float

    @property
    def now_right(self) -> bool | None:
        """Whether the later version predicts the label, when there is one."""
        if self.label == -1:
            return None
        return (self.after >= THRESHOLD) == (self.label == 1)


@dataclass(frozen=True)
class Flips:
    before: Compared
    after: Compared
    items: list[Flip]
    total: int  # changed (input, concept) predictions, listed or not
    inputs: int  # distinct inputs among them
    fixed: int  # of the total, now right
    broken: int  # of the total, now wrong
    limit: int = FLIP_LIMIT


@dataclass(frozen=True)
class Comparison:
    compared: list[Compared]
    differs: str  # what the labels name: "dataset", "model" or "both"
    description: str
    concepts: list[ConceptComparison]
    flips: Flips | None
    flips_error: str = ""  # why the flipped inputs can't be listed, when they can't


def compare(evaluations: list[Evaluation]) -> Comparison:
    """The comparison of finished evaluations (their `metrics` set), in a stable order:
    by model, version, dataset and dataset version."""
    evaluations = sorted(
        evaluations,
        key=lambda e: (
            e.model_version.model.slug,
            e.model_version.number,
            e.dataset_version.dataset.slug,
            e.dataset_version.number,
            e.pk,
        ),
    )
    one_model_version = len({e.model_version_id for e in evaluations}) == 1
    one_dataset_version = len({e.dataset_version_id for e in evaluations}) == 1
    if one_model_version:
        differs = "dataset"
    elif one_dataset_version:
        differs = "model"
    else:
        differs = "both"
    labels = [_label(e, differs) for e in evaluations]
    if len(set(labels)) < len(labels):
        # The same model version on the same dataset version, evaluated more than once.
        labels = [f"{label} (#{e.pk})" for label, e in zip(labels, evaluations, strict=True)]
    compared = [
        Compared(e, label, PALETTE[i % len(PALETTE)])
        for i, (e, label) in enumerate(zip(evaluations, labels, strict=True))
    ]
    flips, flips_error = None, ""
    try:
        flips = flipped_inputs(compared)
    except EvaluationError as exc:
        flips_error = str(exc)
    return Comparison(
        compared=compared,
        differs=differs,
        description=_description(evaluations, differs),
        concepts=[_concept(concept, compared) for concept in _concepts(evaluations)],
        flips=flips,
        flips_error=flips_error,
    )


def _label(evaluation: Evaluation, differs: str) -> str:
    model = f"{evaluation.model_version.model.slug} v{evaluation.model_version.number}"
    dataset = f"{evaluation.dataset_version.dataset.slug} v{evaluation.dataset_version.number}"
    return {"dataset": dataset, "model": model}.get(differs, f"{model} on {dataset}")


def _description(evaluations: list[Evaluation], differs: str) -> str:
    first, n = evaluations[0], len(evaluations)
    if differs == "dataset" and len({e.dataset_version_id for e in evaluations}) == 1:
        return f"Model {_label(first, 'model')} evaluated {n} times on {_label(first, 'dataset')}."
    if differs == "dataset":
        return (
            f"Model {_label(first, 'model')} evaluated on {n} dataset versions: "
            f"{', '.join(_label(e, 'dataset') for e in evaluations)}."
        )
    if differs == "model":
        return (
            f"{n} model versions evaluated on dataset {_label(first, 'dataset')}: "
            f"{', '.join(_label(e, 'model') for e in evaluations)}."
        )
    return (
        f"{n} evaluations of different model versions on different dataset versions: "
        f"{'; '.join(_label(e, 'both') for e in evaluations)}."
    )


def _concepts(evaluations: list[Evaluation]) -> list[str]:
    """Every concept of any of the evaluations, in the order they first appear."""
    seen: dict[str, None] = {}
    for evaluation in evaluations:
        for entry in evaluation.metrics["concepts"]:
            seen.setdefault(entry["concept"], None)
    return list(seen)


def _concept(concept: str, compared: list[Compared]) -> ConceptComparison:
    found = [
        next((c for c in item.evaluation.metrics["concepts"] if c["concept"] == concept), None)
        for item in compared
    ]
    best: dict[str, float] = {}
    for column in BEST_OF:
        values = {m[column] for m in found if m is not None and m[column] is not None}
        if len(values) > 1:
            best[column] = max(values)
    pairs = list(zip(compared, found, strict=True))
    rows = [
        ConceptRow(
            item,
            metrics,
            frozenset(c for c, top in best.items() if metrics and metrics[c] == top),
        )
        for item, metrics in pairs
    ]
    roc = [_series(i, item, metrics, "roc_curve") for i, (item, metrics) in enumerate(pairs)]
    pr = [_series(i, item, metrics, "pr_curve") for i, (item, metrics) in enumerate(pairs)]
    return ConceptComparison(
        concept=concept,
        rows=rows,
        roc=Plot(f"ROC · {concept}", "False positive rate", "True positive rate", roc, True),
        pr=Plot(f"Precision-recall · {concept}", "Recall", "Precision", pr),
    )


def _series(i: int, item: Compared, metrics: dict[str, Any] | None, curve: str) -> Series:
    if metrics is None:
        return Series(item.label, item.colour, "", "not a concept of this model")
    points = metrics[curve]
    if not points:
        return Series(item.label, item.colour, "", "no curve: all labels are alike")
    line = " ".join(f"{_x(x):.1f},{_y(y):.1f}" for x, y in points)
    return Series(item.label, item.colour, line, width=max(5.0 - 1.25 * i, 1.5))


def flipped_inputs(compared: list[Compared], limit: int = FLIP_LIMIT) -> Flips | None:
    """For two versions of one model on one dataset version, the predictions that changed
    at THRESHOLD, the largest change of probability first; None for any other pair."""
    if len(compared) != 2:
        return None
    before, after = sorted(compared, key=lambda c: c.evaluation.model_version.number)
    a, b = before.evaluation, after.evaluation
    if (
        a.model_version.model_id != b.model_version.model_id
        or a.model_version_id == b.model_version_id
        or a.dataset_version_id != b.dataset_version_id
    ):
        return None
    scores_a, scores_b = load_scores(a), load_scores(b)
    concepts_a, concepts_b = list(a.model_version.concepts), list(b.model_version.concepts)
    shared = [c for c in concepts_a if c in concepts_b]
    columns_a = [concepts_a.index(c) for c in shared]
    columns_b = [concepts_b.index(c) for c in shared]
    # Each evaluation keeps the rows labeled for its own concepts: align on the row ids.
    rows, index_a, index_b = np.intersect1d(
        scores_a.rows, scores_b.rows, assume_unique=True, return_indices=True
    )
    P_a = scores_a.P[index_a][:, columns_a]
    P_b = scores_b.P[index_b][:, columns_b]
    Y_a = known_labels(scores_a.Y)[index_a][:, columns_a]
    Y_b = known_labels(scores_b.Y)[index_b][:, columns_b]
    Y = np.where(Y_a != -1, Y_a, Y_b)

    changed_rows, changed_columns = np.nonzero((P_a >= THRESHOLD) != (P_b >= THRESHOLD))
    before_p = P_a[changed_rows, changed_columns]
    after_p = P_b[changed_rows, changed_columns]
    labels = Y[changed_rows, changed_columns]
    known = labels != -1
    now_right = (after_p >= THRESHOLD) == (labels == 1)
    # lexsort: the last key is the primary one; ties keep row, then concept order.
    order = np.lexsort((changed_columns, changed_rows, -np.abs(after_p - before_p)))[:limit]
    texts = dict(
        DatasetVersionRow.objects.filter(
            pk__in=[int(rows[changed_rows[i]]) for i in order]
        ).values_list("pk", "text")
    )
    items = [
        Flip(
            row=int(rows[changed_rows[i]]),
            text=texts.get(int(rows[changed_rows[i]]), ""),
            concept=shared[changed_columns[i]],
            label=int(labels[i]),
            before=float(before_p[i]),
            after=float(after_p[i]),
        )
        for i in order
    ]
    return Flips(
        before=before,
        after=after,
        items=items,
        total=len(changed_rows),
        inputs=len(np.unique(changed_rows)),
        fixed=int((known & now_right).sum()),
        broken=int((known & ~now_right).sum()),
        limit=limit,
    )


CSV_HEADER = [
    "evaluation",
    "model",
    "model_version",
    "dataset",
    "dataset_version",
    "method",
    "scope",
    "concept",
    "inputs",
    "labeled",
    "predicted",
    "tp",
    "fn",
    "fp",
    "roc_auc",
    "precision",
    "recall",
    "f1",
    "accuracy",
]


def csv_rows(comparison: Comparison) -> list[list[Any]]:
    """The totals (scope "macro average", one row per evaluation), then the per-concept
    table (scope "concept"), as CSV rows under CSV_HEADER; empty cells for no value."""
    rows: list[list[Any]] = [CSV_HEADER]
    for item in comparison.compared:
        summary = item.summary
        rows.append(
            [
                *_who(item),
                "macro average",
                "",
                summary["n_rows"],
                "",
                "",
                "",
                "",
                "",
                summary["macro_roc_auc"],
                summary["macro_precision"],
                summary["macro_recall"],
                summary["macro_f1"],
                summary["accuracy"],
            ]
        )
    for concept in comparison.concepts:
        for row in concept.rows:
            m = row.metrics
            if m is None:
                continue
            rows.append(
                [
                    *_who(row.compared),
                    "concept",
                    concept.concept,
                    m["n"],
                    m["labeled"],
                    m["predicted"],
                    m["tp"],
                    m["fn"],
                    m["fp"],
                    m["roc_auc"],
                    m["precision"],
                    m["recall"],
                    m["f1"],
                    "",
                ]
            )
    return [["" if value is None else value for value in row] for row in rows]


def _who(item: Compared) -> list[Any]:
    evaluation = item.evaluation
    return [
        evaluation.pk,
        evaluation.model_version.model.slug,
        evaluation.model_version.number,
        evaluation.dataset_version.dataset.slug,
        evaluation.dataset_version.number,
        evaluation.method,
    ]

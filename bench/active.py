"""Active learning: do the texts Label next picks teach the model more than random ones?

Simulated labeling on the public sets: start from 10 labeled texts, label 10 more at a
time, either the 10 that `classifier.active.most_uncertain` ranks first on the current
model's probabilities for the unlabeled pool (Label next), or 10 drawn at random, and
retrain after each round with the head the product trains by default
(`portal.training.new_head` with `default_params()`). Plots test accuracy against the
number of labels, one chart per set, and reports how many labels Label next needs to
reach random labeling's accuracy at 200 labels. Embeddings are computed once per run.

python -m bench.active [--quick]  (or python -m bench.run --only active)
"""

import sys
import time
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import StratifiedKFold

from bench import charts
from bench.accuracy import Embeddings, read
from bench.models import DATA, DATA_FILES
from classifier.active import most_uncertain
from classifier.hybrid import head_proba

START = 10
STEP = 10
MAX_LABELS = 300
SEEDS = 5
IMDB_FOLDS = 5
IMDB_SEEDS = 3  # each a run over all the folds
REFERENCE = 200  # Label next is measured against random labeling's accuracy here
QUICK_LABELS = 100  # quick mode: SMS only, 2 seeds, up to 100 labels, bar at 100
TABLE_AT = (10, 20, 50, 100, 150, 200, 300)
STRATEGIES = ("Label next", "random")
COLORS = {"Label next": charts.OURS, "random": charts.RAW}


@dataclass
class Split:
    """One simulation's data: the unlabeled pool it labels from and the test split."""

    pool_texts: list[str]
    pool_y: np.ndarray
    pool_X: np.ndarray
    test_texts: list[str]
    test_y: np.ndarray
    test_X: np.ndarray
    seed: list[int]  # numpy's default_rng(seed) draws the first labels


@dataclass
class DataSet:
    name: str
    slug: str
    classes: list[str]
    runs: list[list[Split]]  # a run is tested on the union of its splits' test texts
    max_labels: int
    reference: int  # random's accuracy at this many labels is the bar
    how: str  # pool, test split and seeds, for the report


class Trainer:
    """Fits the product's default head; the Enrich corpus embedded once."""

    def __init__(self, embed: Embeddings, classes: list[str]) -> None:
        from classifier import enrich
        from portal import training
        from portal.models import default_params

        self.training = training
        self.classes = classes
        self.params = default_params()
        self.params["concepts"] = list(classes)
        self.exclusive = bool(self.params["concepts_mutually_exclusive"])
        enriched = training.enriched(self.params)
        self.background = embed(enrich.background_texts()) if enriched else None

    def fit(self, texts: list[str], X: np.ndarray, y: np.ndarray):
        # Each text labeled with its one concept, as an upload of a text,label CSV does.
        rows = [(None, None, [self.classes[c]], []) for c in y]
        Y = self.training.labels_matrix(rows, self.classes, self.exclusive)
        head = self.training.new_head(self.params, self.classes, self.background)
        return self.training.fit_head(head, texts, X, Y)


def first_labels(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """START random pool rows, drawn again until every class occurs: the model can't train
    (and Label next can't rank anything) before each concept has a positive example."""
    while True:
        picked = rng.choice(len(y), START, replace=False)
        if len(np.unique(y[picked])) == len(np.unique(y)):
            return picked


def simulate(
    split: Split, trainer: Trainer, max_labels: int, reference: int
) -> tuple[dict[str, list[int]], dict[str, float], list[str]]:
    """Test texts right after each round for both strategies (same first labels), the share
    of the rarer class among the first `reference` labels, and the features the default
    head used each round."""
    start = first_labels(split.pool_y, np.random.default_rng(split.seed))
    rare = np.argmin(np.bincount(split.pool_y))
    correct: dict[str, list[int]] = {}
    rare_share: dict[str, float] = {}
    features: list[str] = []
    for strategy in STRATEGIES:
        pick = np.random.default_rng([*split.seed, 1])
        labeled = list(start)
        scores = []
        while True:
            head = trainer.fit(
                [split.pool_texts[i] for i in labeled], split.pool_X[labeled], split.pool_y[labeled]
            )
            features.append(getattr(head, "features_", "embedding"))
            predicted = head_proba(head, split.test_texts, split.test_X).argmax(axis=1)
            scores.append(int(np.sum(predicted == split.test_y)))
            if len(labeled) <= reference:
                rare_share[strategy] = float(np.mean(split.pool_y[labeled] == rare))
            if len(labeled) >= max_labels:
                break
            unlabeled = np.setdiff1d(np.arange(len(split.pool_y)), labeled)
            if strategy == "Label next":
                # Shuffled first, so that texts the model is equally unsure of come in
                # random order (most_uncertain keeps the order of ties).
                unlabeled = pick.permutation(unlabeled)
                P = head_proba(
                    head, [split.pool_texts[i] for i in unlabeled], split.pool_X[unlabeled]
                )
                chosen = unlabeled[most_uncertain(P, trainer.exclusive)[:STEP]]
            else:
                chosen = pick.choice(unlabeled, min(STEP, len(unlabeled)), replace=False)
            labeled += chosen.tolist()
        correct[strategy] = scores
    return correct, rare_share, features


def data_sets(quick: bool, embed: Embeddings) -> list[DataSet]:
    sms, sms_y, sms_classes = read("sms_spam_train.csv", "text", "label")
    sms_test, sms_test_y, _ = read("sms_spam_test.csv", "text", "label")
    seeds = 2 if quick else SEEDS
    sms_X, sms_test_X = embed(sms), embed(sms_test)
    counts = ", ".join(f"{c} {n}" for c, n in zip(sms_classes, np.bincount(sms_y), strict=True))
    test_counts = ", ".join(
        f"{c} {n}" for c, n in zip(sms_classes, np.bincount(sms_test_y), strict=True)
    )
    out = [
        DataSet(
            "SMS spam",
            "sms",
            sms_classes,
            [
                [Split(sms, sms_y, sms_X, sms_test, sms_test_y, sms_test_X, [s])]
                for s in range(seeds)
            ],
            QUICK_LABELS if quick else MAX_LABELS,
            QUICK_LABELS if quick else REFERENCE,
            f"pool: sms_spam_train.csv ({len(sms)} texts: {counts}); test: sms_spam_test.csv "
            f"({len(sms_test)} texts: {test_counts}; its spam share is much higher than the "
            f"pool's, and one text is {100 / len(sms_test):.1f} points); runs 0–{seeds - 1} "
            "(seed [run])",
        )
    ]
    if quick:  # IMDB's long reviews make its fits the slow part
        return out
    imdb, imdb_y, imdb_classes = read("imdb.csv", "input", "concepts")
    imdb_X = embed(imdb)
    folds = list(StratifiedKFold(IMDB_FOLDS, shuffle=True, random_state=0).split(imdb, imdb_y))
    runs = [
        [
            Split(
                [imdb[i] for i in pool],
                imdb_y[pool],
                imdb_X[pool],
                [imdb[i] for i in test],
                imdb_y[test],
                imdb_X[test],
                [seed, k],
            )
            for k, (pool, test) in enumerate(folds)
        ]
        for seed in range(IMDB_SEEDS)
    ]
    pool_size = len(runs[0][0].pool_y)
    out.append(
        DataSet(
            "IMDB",
            "imdb",
            imdb_classes,
            runs,
            pool_size,
            # With the pool used up both strategies have the same labels, so the bar is set
            # well before that.
            100,
            f"imdb.csv has {len(imdb)} reviews only: a stratified {IMDB_FOLDS}-fold split "
            f"(shuffled, random_state 0), each fold in turn the test split ({len(folds[0][1])}"
            f" reviews) and the other {pool_size} the pool. A run simulates labeling on all "
            f"{IMDB_FOLDS} folds (seed [run, fold]) and its accuracy after a round counts "
            f"every review once, where it was held out (one review is "
            f"{100 / len(imdb):.1f} points); runs 0–{IMDB_SEEDS - 1}",
        )
    )
    return out


def band(runs: list[list[float]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a = np.array(runs)
    return np.median(a, axis=0), a.min(axis=0), a.max(axis=0)


def labels_to_reach(
    counts: np.ndarray, curve: np.ndarray, target: float
) -> tuple[int | None, float | None]:
    """First round whose accuracy reaches `target`, and the label count where the curve
    crosses it by linear interpolation from the round before; None if it never does."""
    reached = np.flatnonzero(curve >= target - 1e-9)
    if not len(reached):
        return None, None
    i = int(reached[0])
    if i == 0:
        return int(counts[0]), float(counts[0])
    x0, x1, y0, y1 = counts[i - 1], counts[i], curve[i - 1], curve[i]
    return int(counts[i]), float(x0 + (x1 - x0) * (target - y0) / (y1 - y0))


def chart(data: DataSet, counts: np.ndarray, curves: dict, target: float) -> str:
    fig, ax = charts.figure(f"{data.name}: test accuracy, Label next vs random")
    for strategy in STRATEGIES:
        median, low, high = curves[strategy]
        color = COLORS[strategy]
        ax.fill_between(counts, low * 100, high * 100, color=color, alpha=0.2, linewidth=0)
        ax.plot(counts, median * 100, color=color, label=f"{strategy} (median, min–max)")
    ax.axhline(target * 100, color="#555", linestyle=":", linewidth=1)
    ax.annotate(
        f"random at {data.reference}",
        (counts[0], target * 100),
        xytext=(0, 3),
        textcoords="offset points",
        fontsize=8,
        color="#555",
    )
    ax.set_xlabel("labeled texts")
    ax.set_ylabel("accuracy on the test split (%)")
    ax.legend(frameon=False, fontsize=9, loc="lower right")
    return charts.save(fig, f"active-{data.slug}")


def section(data: DataSet, trainer: Trainer) -> tuple[list[str], list[str]]:
    """The data set's table and chart lines, and its sentence for the summary."""
    runs = {s: [] for s in STRATEGIES}
    rare = {s: [] for s in STRATEGIES}
    features: list[str] = []
    started = time.perf_counter()
    for splits in data.runs:
        correct = {s: 0 for s in STRATEGIES}
        for split in splits:
            right, rare_share, used = simulate(split, trainer, data.max_labels, data.reference)
            for s in STRATEGIES:
                correct[s] += np.array(right[s])
                rare[s].append(rare_share[s])
            features += used
        tested = sum(len(split.test_y) for split in splits)
        for s in STRATEGIES:
            runs[s].append(correct[s] / tested)
    seconds = time.perf_counter() - started
    counts = np.array([START + STEP * i for i in range(len(runs["random"][0]))])
    counts[-1] = min(counts[-1], data.max_labels)
    curves = {s: band(runs[s]) for s in STRATEGIES}
    at = int(np.flatnonzero(counts == data.reference)[0])
    target = float(curves["random"][0][at])
    first, crossing = labels_to_reach(counts, curves["Label next"][0], target)
    per_run = [
        labels_to_reach(counts, np.array(a), r[at])[0]
        for a, r in zip(runs["Label next"], runs["random"], strict=True)
    ]
    reached = [n for n in per_run if n is not None]

    used = ", ".join(f"{k} features {features.count(k)}×" for k in sorted(set(features)))
    lines = [
        f"### {data.name}",
        "",
        f"{data.how}. {len(data.runs)} runs, {len(features)} fits in {seconds:.0f} s; "
        f"the default head used {used}.",
        "",
        "| labels | Label next: median (min–max) | random: median (min–max) |",
        "|---|---|---|",
    ]
    for n in TABLE_AT:
        if n not in counts:
            continue
        i = int(np.flatnonzero(counts == n)[0])
        cells = [
            f"{curves[s][0][i] * 100:.1f} ({curves[s][1][i] * 100:.1f}–{curves[s][2][i] * 100:.1f})"
            for s in STRATEGIES
        ]
        lines.append(f"| {n} | {' | '.join(cells)} |")
    rare_name = data.classes[int(np.argmin(np.bincount(data.runs[0][0].pool_y)))]
    shares = " and ".join(f"{s} {np.median(rare[s]) * 100:.0f}%" for s in STRATEGIES)
    lines += ["", chart(data, counts, curves, target), ""]
    if first is None:
        verdict = (
            f"Label next never reached random's median accuracy at {data.reference} labels "
            f"({target * 100:.1f}%) within {counts[-1]} labels"
        )
    else:
        verdict = (
            f"Label next reached random's median accuracy at {data.reference} labels "
            f"({target * 100:.1f}%) at {first} labels (the median curve crosses it at "
            f"{crossing:.0f})"
        )
    verdict += (
        f"; run by run (each against its own random curve): "
        f"{', '.join('never' if n is None else str(n) for n in per_run)}"
        f"{f' (median of those that reached it: {np.median(reached):.0f})' if reached else ''}. "
        f"Share of {rare_name!r}, the rarer class of the pool, among the first "
        f"{min(data.reference, counts[-1])} labels: {shares} (medians)."
    )
    if target <= curves["random"][0][0]:
        verdict += (
            f" Random labeling was no more accurate at {data.reference} labels than at "
            f"{START} ({curves['random'][0][0] * 100:.1f}%), so on this set the figure says "
            "little."
        )
    lines += [verdict, ""]
    needed = f"{first} labels" if first is not None else f"not reached by {counts[-1]} labels"
    summary = f"{data.name}: {needed} (random at {data.reference}: {target * 100:.1f}%)"
    return lines, [summary]


def run(quick: bool = False) -> list[str]:
    """Markdown lines of the section, starting with its "## " heading."""
    heading = ["## Active learning: Label next vs random", ""]
    if not all((DATA / f).exists() for f in DATA_FILES):
        return [
            *heading,
            f"_Skipped: the public data sets are not in {DATA} (set PORTAL_BENCH_DATA)._",
        ]
    embed = Embeddings()
    started = time.perf_counter()
    sets = data_sets(quick, embed)
    trainers = {d.slug: Trainer(embed, d.classes) for d in sets}
    embedding_seconds = time.perf_counter() - started
    limits = " and ".join(f"{d.max_labels} labels ({d.name})" for d in sets)
    trainer = trainers["sms"]
    head = trainer.training.new_head(trainer.params, trainer.classes, trainer.background)
    lines = [
        *heading,
        "Simulated labeling. Each run starts from "
        f"{START} texts of the pool drawn at random (drawn again until every class occurs, "
        "since a head needs a positive example of each concept), then labels "
        f"{STEP} more per round up to {limits}: either the "
        f"{STEP} that **Label next** would ask for (`classifier.active.most_uncertain` on the "
        "current model's probabilities for every unlabeled pool text, shuffled first so "
        "ties fall at random) or "
        f"{STEP} drawn at random; both strategies start from the same {START} texts (a run's "
        "seed drives numpy's `default_rng(seed)` for the first draw and "
        "`default_rng(seed + [1])` for the picks). After "
        "each round the model is retrained from scratch on all labels so far with the "
        "product's default training: `portal.training.new_head(default_params())` = "
        f"`{type(head).__name__}` (head {trainer.params['train_params']['head']!r}: "
        "embedding-only or hybrid embedding + TF-IDF features, picked by cross-validation), "
        "one-vs-rest (concepts not mutually exclusive), C by cross-validation, Enrich "
        "Automatic (the background corpus of `classifier/enrich.py` embedded as extra "
        "negatives), every text labeled with its one concept as a text,label CSV upload "
        "does. Embeddings: the bundled all-MiniLM-L6-v2 (`get_embedder()`), computed once "
        f"for every text and the Enrich corpus ({embedding_seconds:.0f} s). **Accuracy**: "
        "the share of the test split whose highest-probability concept is its label. "
        "Each chart shows the median over the runs and their min–max band; the dotted "
        "line is random's median accuracy at the reference number of labels.",
        "",
    ]
    summaries = []
    for data in sets:
        body, summary = section(data, trainers[data.slug])
        lines += body
        summaries += summary
    lines += [
        "Labels Label next needed to reach random labeling's accuracy (first round whose "
        "median reaches it): " + "; ".join(summaries) + ".",
    ]
    return lines


if __name__ == "__main__":
    from bench.common import setup_django

    setup_django()
    sys.stdout.write("\n".join(run("--quick" in sys.argv[1:])) + "\n")

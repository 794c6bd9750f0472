"""Models: embedding on upload, click-to-trained, and accuracy on public data sets.

Timings go through the product's own code (importing, the embedding cache, start_training
and the worker's `train`, called in-process) and are compared, in the same run, with the
raw libraries: `SentenceTransformer.encode` and scikit-learn's logistic regressions on the
same arrays. Accuracy needs the public sets in PORTAL_BENCH_DATA (default:
<repo>/../shared/data) and is skipped, with a note, when they are not there.
"""

import os
import statistics
from collections import Counter
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from unittest import mock

import numpy as np

from bench import charts
from bench.common import ROOT, Result, Stats, measure, sentences
from classifier.embedders import DEFAULT_MODEL
from classifier.hybrid import head_proba

DATA = Path(os.environ.get("PORTAL_BENCH_DATA") or ROOT.parent / "shared" / "data")
DATA_FILES = ("sms_spam_train.csv", "sms_spam_test.csv", "imdb.csv")
IMDB_FOLDS, IMDB_REPEATS = 25, 5  # 5 repeats of a 5-fold split
C_GRID = [0.1, 1, 10, 100]
# The raw library doing what our head does when it chooses C (l1_ratios and
# use_legacy_attributes only silence scikit-learn 1.9's FutureWarnings).
CV_ARGS = dict(
    Cs=C_GRID, cv=5, scoring="neg_log_loss", l1_ratios=(0.0,), use_legacy_attributes=False
)
# Our head in the three settings the accuracy table compares: (model ID, exclusive, Enrich).
VARIANTS = (
    ("default", False, "Automatic"),
    ("no-enrich", False, "Disabled"),
    ("exclusive", True, "Automatic"),
)

SPAM = """
WINNER! You have been selected for a £900 prize. Call 09061701461 to claim now
Free entry in a weekly draw to win FA Cup final tickets. Text WIN to 87121
URGENT: your mobile number has won a cash award. Reply YES to collect
Cheap loans approved today, no credit check. Call free on 0800 195 6669
Congratulations, you get a free camera phone upgrade. Offer ends Friday, T&Cs apply
""".strip().splitlines()
HAM = """
Are we still meeting for lunch tomorrow at 12?
Sorry, running late, the bus broke down. Be there in 20 min
Can you pick up some milk and bread on your way home?
Happy birthday mum! See you at dinner tonight
I left the report on your desk, tell me what you think
""".strip().splitlines()
# Neither spam nor ham messages, and not in the Enrich corpus (none within cosine 0.7 of
# one of its texts): a head that knows what its concepts are not gives them low scores.
OFF_TOPIC = """
Snow chains are now required on the mountain pass above 1,200 metres.
The forecast says the humidity will stay near 90 percent until Sunday.
A tornado warning was issued for three counties in the plains this afternoon.
Fog banks along the estuary should lift by mid-morning.
Toast the cumin seeds in a dry pan until they start to pop.
Brown butter gives the shortbread a nutty flavour.
Soak the chickpeas overnight and simmer them for ninety minutes.
Deglaze the pan with a splash of white wine and scrape up the brown bits.
The goalkeeper saved two penalties in the shoot-out to send his club to the semi-final.
The cyclist lost the yellow jersey on the final mountain stage.
The rookie pitcher struck out eleven batters in his first start.
The relay team was disqualified for a faulty baton exchange.
How can I make git forget a file that is already tracked but now in .gitignore?
My monitor flickers whenever the refresh rate is set above 120 hertz.
Is it safe to run a SATA SSD and an NVMe drive in the same desktop?
Which sorting algorithm is stable and runs in n log n time in the worst case?
The laptop fan runs at full speed even when nothing is open.
Copper prices rose four percent after the mine strike in Chile.
The senate committee postponed its hearing on the fisheries bill.
The river froze solid for the first time since 1963.
The telescope's mirror is six and a half metres across and made of beryllium.
A blue whale's heart weighs about as much as a small car.
The cathedral's spire was rebuilt with oak from the same forest as the original.
Mix one part cement with three parts sand for the mortar.
Repot the orchid after it flowers, using a coarse bark mix.
The sonnet's final couplet reverses the argument of the first twelve lines.
The violinist recorded all six Bach sonatas and partitas in a single week.
Bring a headlamp: the cave tour goes two kilometres underground.
The night bus to the coast leaves from platform nine at 23:40.
Visas for the conference can be requested through the embassy's online portal.
The vaccine trial enrolled four thousand volunteers across nine countries.
Knee replacement patients usually walk with a frame on the day after surgery.
The tyre pressure warning light came on after the cold night.
Bleed the radiators before turning the heating on for the winter.
The toddler learned to climb out of the cot last week.
Medieval scribes made ink from oak galls and iron salts.
The algorithm shortened the warehouse's picking routes by a fifth.
Some species of bamboo flower only once every hundred years.
The referendum on the new flag will take place in the spring.
Use a spirit level to check the frame before fixing the door.
""".strip().splitlines()


def alternate(ours: Callable[[], object], raw: Callable[[], object], runs: int) -> list[Stats]:
    """`measure` for both sides taking turns, so that load from other work hits both alike."""
    times = [(measure(ours, 1).median, measure(raw, 1).median) for _ in range(runs)]
    sides = [[o for o, _ in times], [r for _, r in times]]
    return [Stats(statistics.median(t), min(t), max(t), runs) for t in sides]


def met(ok: bool) -> str:
    return "met" if ok else "**not met**"


def raw_encode(texts: list[str]) -> np.ndarray:
    """`SentenceTransformer.encode` with default settings (no progress bar), our weights."""
    from classifier import embedders

    model = embedders.get_embedder(embedders.BUNDLED_MODEL)._model
    return model.encode(texts, show_progress_bar=False)


def cached(texts: list[str]) -> np.ndarray:
    """Embeddings through our cache, embedding what is missing."""
    from portal import embedding
    from portal.models import text_hash

    return embedding.vectors(DEFAULT_MODEL, texts, [text_hash(t) for t in texts])


def new_app(slug: str):
    from django.contrib.auth import get_user_model

    from portal.models import App

    user, _ = get_user_model().objects.get_or_create(username="bench")
    App.objects.filter(owner=user, slug=slug).delete()
    return App.objects.create(owner=user, slug=slug)


def add_texts(app, texts: list[str], labels: list[str]) -> list[int]:
    """Upload texts (label "" = none) into a new dataset "all" through the importer; IDs."""
    from portal import importing
    from portal.csv_io import ParsedRow
    from portal.models import Dataset

    dataset = Dataset.objects.create(app=app, slug="all")
    rows = [
        ParsedRow("", text, (label,) if label else (), (), {}, row)
        for row, (text, label) in enumerate(zip(texts, labels, strict=True), start=2)
    ]
    importing.add_inputs(app, rows, datasets=[dataset], concepts=[], author=None)
    return list(dataset.inputs.order_by("pk").values_list("pk", flat=True))


def embed_ids(ids: list[int]) -> None:
    """The embedding tasks' work after an upload, one call per task (BATCH IDs each)."""
    from portal import embedding

    for start in range(0, len(ids), embedding.BATCH):
        embedding.embed_inputs(ids[start : start + embedding.BATCH])


def labeled_model(app, slug: str = "spam", exclusive: bool = False, **train_params):
    """A model of the app's dataset "all", version 1 (snapshotted on first use)."""
    from portal import versions
    from portal.models import DatasetVersion, TrainableModel, default_params

    version, created = DatasetVersion.objects.get_or_create(dataset=app.datasets.get(), number=1)
    if created:
        versions.snapshot(version.pk)
        version.refresh_from_db()
    params = default_params()
    params.update(
        dataset_id="all",
        dataset_version_id="1",
        concepts=sorted(version.concept_counts),
        concepts_mutually_exclusive=exclusive,
    )
    params["train_params"].update(train_params)
    return TrainableModel.objects.create(app=app, slug=slug, params=params)


def click_to_trained(model, queue: bool):
    """The Train click and the worker's job, in-process; without a queue the send is skipped."""
    from portal import training
    from portal.models import ModelVersion

    skip = mock.patch.object(training, "enqueue_on_commit", lambda *a, **k: None)
    with nullcontext() if queue else skip:
        version = training.start_training(model)
    training.train(version.pk)
    version.refresh_from_db()
    assert version.status == ModelVersion.Status.TRAINED, version.error
    return version


def upload_throughput(quick: bool) -> Result:
    from portal.embedding import BATCH

    # More runs than elsewhere: encoding is what other work on a shared machine slows most.
    size, runs = (250, 2) if quick else (2_000, 5)
    raw_encode(sentences(128, seed=3))  # load and warm up the model
    # Fresh texts in every run: the cache would make a second upload of the same texts free.
    ours_left = [[f"run {n}: {t}" for t in sentences(size)] for n in range(runs)]
    raw_left = list(ours_left)
    apps = [new_app(f"bench-upload-{n}") for n in range(runs)]

    def ours() -> None:
        embed_ids(add_texts(apps.pop(), ours_left.pop(), [""] * size))

    ours_stats, raw_stats = alternate(ours, lambda: raw_encode(raw_left.pop()), runs)
    share = raw_stats.median / ours_stats.median
    return Result(
        f"Upload → all embedded, {size:,} texts",
        ours_stats,
        raw_stats,
        f"{size / ours_stats.median:,.0f} texts/s vs {size / raw_stats.median:,.0f} raw = "
        f"{share:.0%} of raw (target ≥ 85%: {met(share >= 0.85)}); ours: import, then "
        f"embed_inputs per {BATCH} IDs as the tasks do (encode batch 64); raw: encode() with "
        "default settings (batch 32), progress bar off",
    )


def raw_arrays(version, background: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rows our head fits: cached embeddings + the background, with its weights."""
    from classifier.head import BACKGROUND_SHARE

    rows = list(version.rows.order_by("pk").values_list("text", "positive"))
    X = cached([text for text, _ in rows])
    spam = np.array([positive == ["spam"] for _, positive in rows])
    weight = min(1.0, BACKGROUND_SHARE * len(X) / len(background))
    w = np.concatenate([np.ones(len(X)), np.full(len(background), weight)])
    return np.vstack([X, background]), spam, w


def raw_fits(X: np.ndarray, spam: np.ndarray, w: np.ndarray, cv: bool) -> None:
    """One model per concept (ham, spam) on the same rows; background rows are negatives."""
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV

    for positive in (~spam, spam):
        y = np.concatenate([positive, np.zeros(len(X) - len(spam), dtype=bool)])
        model = LogisticRegressionCV(**CV_ARGS) if cv else LogisticRegression()
        model.fit(X, y, sample_weight=w)


def training_times(quick: bool, queue: bool) -> list[Result]:
    from classifier import enrich

    # Quick mode: 200 cached inputs instead of 2,000 and 20,000.
    runs, sizes = (2, (200,)) if quick else (3, (2_000, 20_000))
    small = new_app("bench-train-10")
    embed_ids(add_texts(small, SPAM + HAM, ["spam"] * 5 + ["ham"] * 5))
    small_model = labeled_model(small)

    # The first training ever embeds the Enrich corpus into the cache; later ones read it.
    # Quick mode leaves that figure out (the encoding of 1,182 texts twice takes longest).
    texts = enrich.background_texts()
    results = []
    if not quick:
        first = Result(
            f"First-ever training, 10 inputs (embeds the {len(texts):,} Enrich texts)",
            measure(lambda: click_to_trained(small_model, queue), 1),
            measure(lambda: raw_encode(texts), 1),
            "one run: the first training on a new install; raw: encode() of the Enrich texts alone",
        )
        results.append(first)
    background = cached(texts)
    results.append(
        timed_training("10 inputs (5 spam, 5 ham)", small_model, queue, runs, background)
    )
    for size in sizes:
        large = new_app(f"bench-train-{size}")
        # Word salad, spam when it holds one of three words: learnable, as real labels are.
        texts = sentences(size, seed=11)
        labels = ["spam" if {"prize", "winner", "claim"} & set(t.split()) else "ham" for t in texts]
        embed_ids(add_texts(large, texts, labels))
        model = labeled_model(large)
        results.append(timed_training(f"{size:,} cached inputs", model, queue, runs, background))
    return results


def timed_training(name: str, model, queue: bool, runs: int, background: np.ndarray) -> Result:
    trained: list = []
    arrays = raw_arrays(model.app.datasets.get().versions.get(), background)
    ours, raw_cv = alternate(
        lambda: trained.append(click_to_trained(model, queue)),
        lambda: raw_fits(*arrays, cv=True),
        runs,
    )
    fit = measure(lambda: raw_fits(*arrays, cv=False), runs).median
    last = trained[-1]
    fitted = statistics.median(v.fit_seconds for v in trained)
    reads = statistics.median(v.embed_seconds for v in trained)
    size = last.dataset_version.input_count
    if size <= 10:
        target = f"Target ≤ 2 s: {met(ours.median <= 2.0)}"
    elif size == 2_000:
        budget = min(3.0, 3 * fit + 0.5)
        target = (
            f"Target ≤ 3 s and ≤ 3× plain fit + 0.5 s = {3 * fit + 0.5:.2f} s: "
            f"{met(ours.median <= budget)}"
        )
    else:
        target = "No target at this size"
    return Result(
        f"Click to trained, {name}",
        ours,
        raw_cv,
        f"raw: LogisticRegressionCV(Cs={C_GRID}, cv=5, log loss) per concept on the same rows "
        f"(+ {len(background):,} background negatives); plain LogisticRegression() fit "
        f"{fit:.3f} s (ours = {ours.median / fit:.1f}×). Ours (medians): fit {fitted:.2f} s, "
        f"cache reads {reads:.2f} s, C = {head_of(last).chosen_C_:g}. {target}",
    )


def charts_lines(results: list[Result]) -> list[str]:
    """Embedding throughput and click-to-trained times, ours beside the raw library."""
    upload = results[0]
    trainings = [r for r in results if r.name.startswith("Click to trained")]
    size = int(upload.name.rsplit(", ", 1)[1].split()[0].replace(",", ""))
    return [
        charts.ours_vs_raw(
            "models-upload",
            "Upload → embedded: texts/s",
            [f"{size:,} texts"],
            [size / upload.ours.median],
            [size / upload.raw.median],
            "texts/s",
        ),
        "",
        charts.ours_vs_raw(
            "models-training",
            "Click to trained (raw: LogisticRegressionCV)",
            [r.name.removeprefix("Click to trained, ").split(" (")[0] for r in trainings],
            [r.ours.median for r in trainings],
            [r.raw.median for r in trainings],
            "seconds (log scale)",
            log=True,
        ),
    ]


def head_of(version):
    from classifier.hybrid import load_head

    return load_head(bytes(version.head))


def run(quick: bool) -> list[Result]:
    from portal import health

    queue = health.check_broker()["ok"]
    return [upload_throughput(quick), *training_times(quick, queue)]


def compare(slug: str, train: list, test: list, queue: bool) -> tuple[list[float], list, int]:
    """Test accuracy of our three variants and of the raw libraries; our versions; rows."""
    from sklearn.linear_model import LogisticRegression

    app = new_app(slug)
    add_texts(app, [r.text for r in train], [r.concepts[0] for r in train])
    trained = [
        click_to_trained(labeled_model(app, model_id, exclusive, enrich_dataset=enrich), queue)
        for model_id, exclusive, enrich in VARIANTS
    ]
    texts, truth = [r.text for r in test], np.array([r.concepts[0] for r in test])
    X = cached(texts)
    scores = []
    for version in trained:
        head = head_of(version)
        p = head_proba(head, texts, X)
        scores.append(np.mean(np.array(head.concepts)[p.argmax(1)] == truth))
    rows = list(trained[0].dataset_version.rows.values_list("text", "positive"))
    raw = LogisticRegression().fit(raw_encode([t for t, _ in rows]), [p[0] for _, p in rows])
    scores.append(np.mean(raw.predict(raw_encode(texts)) == truth))
    return [float(s) for s in scores], trained, len(rows)


def accuracy() -> list[str]:
    """Markdown lines: test accuracy on the public sets, ours against the raw libraries."""
    if not all((DATA / f).exists() for f in DATA_FILES):
        return [f"_Skipped: the public data sets are not in {DATA} (set PORTAL_BENCH_DATA)._"]
    from sklearn.model_selection import RepeatedStratifiedKFold

    from portal import health
    from portal.csv_io import parse_csv

    queue = health.check_broker()["ok"]
    sms_train, sms_test, imdb = (parse_csv((DATA / f).read_bytes()) for f in DATA_FILES)
    lines = [
        "Test-set accuracy. Ours: trained through `training.train`, label = the concept with "
        "the highest score; by default Enrich Automatic, C by cross-validation, not exclusive. "
        "Raw: the same training rows, `SentenceTransformer.encode` + `LogisticRegression()` "
        "with default settings. Training rows are counted after the importer dropped exact "
        f"duplicates. IMDB has only {len(imdb)} rows, so one split's test set is too small "
        "to compare on (one text is 1.7 points of a 60-row test set): it is split "
        f"{IMDB_FOLDS} times ({IMDB_REPEATS} repeats of a stratified {IMDB_FOLDS // IMDB_REPEATS}"
        "-fold split, seed 0), each text is tested once per repeat, and the table gives the "
        "mean over the splits.",
        "",
        "| data set | train / test | ours | ours, Enrich Disabled | ours, mutually exclusive "
        "| raw | ours: C chosen, fit time (default / Enrich Disabled) |",
        "|---|---|---|---|---|---|---|",
    ]
    scores, sms, size = compare("bench-sms", sms_train, sms_test, queue)
    lines.append(accuracy_row("SMS spam (given split)", [scores], [sms], size, len(sms_test)))

    splitter = RepeatedStratifiedKFold(
        n_splits=IMDB_FOLDS // IMDB_REPEATS, n_repeats=IMDB_REPEATS, random_state=0
    )
    all_scores, all_trained = [], []
    for i, (train, test) in enumerate(splitter.split(imdb, [r.concepts[0] for r in imdb])):
        scores, trained, size = compare(
            f"bench-imdb-{i}", [imdb[j] for j in train], [imdb[j] for j in test], queue
        )
        all_scores.append(scores)
        all_trained.append(trained)
    name = f"IMDB (imdb.csv, mean of {IMDB_FOLDS} stratified splits)"
    lines.append(accuracy_row(name, all_scores, all_trained, size, len(test)))
    return [*lines, "", off_topic(sms[0], sms[1])]


def accuracy_row(name: str, scores: list, trained: list, size: int, tested: int) -> str:
    """One table row: mean accuracy of each variant, the Cs chosen and median fit times."""
    cells = " | ".join(f"{s:.3f}" for s in np.mean(scores, axis=0))
    fits = " / ".join(f"{np.median([t[k].fit_seconds for t in trained]):.2f} s" for k in range(2))
    chosen = Counter(head_of(t[0]).chosen_C_ for t in trained)
    times = (lambda n: f" ({n}×)") if len(trained) > 1 else (lambda n: "")
    Cs = ", ".join(f"C = {c:g}{times(n)}" for c, n in sorted(chosen.items()))
    return f"| {name} | {size} / {tested} | {cells} | {Cs}; {fits} |"


def off_topic(enriched, plain) -> str:
    """How many off-topic texts the SMS model calls spam or ham, with and without Enrich."""
    from classifier import enrich

    X = cached(OFF_TOPIC)
    counts = []
    for version in (enriched, plain):
        head = head_of(version)
        p = head_proba(head, OFF_TOPIC, X)
        spam = int((p[:, list(head.concepts).index("spam")] >= 0.5).sum())
        counts.append(f"{int((p.max(axis=1) >= 0.5).sum())}/{len(X)} (as spam: {spam})")
    nearest = (X @ cached(enrich.background_texts()).T).max(axis=1)
    return (
        f"Off-topic texts ({len(X)} sentences written for this benchmark: weather, cooking, "
        "sports, tech questions...; cosine to the nearest Enrich text: median "
        f"{np.median(nearest):.2f}, max {nearest.max():.2f}) scored ≥ 0.5 for some concept by "
        f"the SMS model: Enrich Automatic {counts[0]}, Enrich Disabled {counts[1]}."
    )

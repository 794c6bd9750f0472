"""Embedding backends: PyTorch against ONNX Runtime (fp32 and int8) for the bundled model.

Throughput (texts/s) of the raw library (`SentenceTransformer.encode`), our PyTorch
embedder and the two ONNX variants on the public SMS and IMDB texts, the variants taking
turns in each run so that load from other work hits them alike. Accuracy: each
variant's embeddings + `LogisticRegression()` with default settings on the evaluation
benchmark's splits (SMS: the given train/test split; IMDB: 5 repeats of a stratified
5-fold split, seed 0). Then the product's rule picks the default backend.

    python -m bench.embedders [--quick]
"""

import statistics
import sys
import time
from collections.abc import Callable

import numpy as np

from bench import charts
from bench.accuracy import read
from bench.common import machine
from bench.models import DATA, DATA_FILES
from classifier import embedders
from classifier.embedders import BUNDLED_MODEL, ONNX_INT8_MODEL, ONNX_MODEL

HEADING = "## Embedding backends"
RAW = "PyTorch: `SentenceTransformer.encode` (raw library)"
VARIANTS = {
    "PyTorch (ours)": BUNDLED_MODEL,
    "ONNX fp32": ONNX_MODEL,
    "ONNX int8": ONNX_INT8_MODEL,
}
INT8_SPEEDUP = 1.5
INT8_MAX_LOSS = 0.005  # accuracy, as a fraction: 0.5 points
IMDB_SPLITS, IMDB_REPEATS = 5, 5


def texts_per_second(
    encoders: dict[str, Callable], texts: list[str], runs: int
) -> tuple[dict[str, tuple[float, float, float]], dict[str, np.ndarray]]:
    """Per encoder: (median, min, max) texts/s over `runs` runs, encoders taking turns;
    and the vectors each gave."""
    rates: dict[str, list[float]] = {name: [] for name in encoders}
    vectors = {}
    for _ in range(runs):
        for name, encode in encoders.items():
            started = time.perf_counter()
            vectors[name] = encode(texts)
            rates[name].append(len(texts) / (time.perf_counter() - started))
    return {name: (statistics.median(r), min(r), max(r)) for name, r in rates.items()}, vectors


def accuracies(X: np.ndarray, y: np.ndarray, splits: list) -> float:
    """Mean test accuracy of `LogisticRegression()` over `splits` of (train, test) rows."""
    from sklearn.linear_model import LogisticRegression

    scores = []
    for train, test in splits:
        model = LogisticRegression().fit(X[train], y[train])
        scores.append(float((model.predict(X[test]) == y[test]).mean()))
    return float(np.mean(scores))


def decide(speedups: dict[str, dict[str, float]], losses: dict[str, dict[str, float]]) -> str:
    """The product's rule: int8 if at least 1.5 times as fast and at most 0.5 points less accurate
    on every set; otherwise fp32 ONNX if faster on every set; otherwise PyTorch."""
    sets = speedups["ONNX int8"]
    if all(
        speedups["ONNX int8"][s] >= INT8_SPEEDUP and losses["ONNX int8"][s] <= INT8_MAX_LOSS
        for s in sets
    ):
        return ONNX_INT8_MODEL
    if all(speedups["ONNX fp32"][s] > 1 for s in sets):
        return ONNX_MODEL
    return BUNDLED_MODEL


def run(quick: bool) -> list[str]:
    if not all((DATA / f).exists() for f in DATA_FILES):
        return [HEADING, "", f"_Skipped: the public data sets are not in {DATA}._"]
    from sklearn.model_selection import RepeatedStratifiedKFold

    sms_train, sms_train_y, _ = read("sms_spam_train.csv", "text", "label")
    sms_test, sms_test_y, _ = read("sms_spam_test.csv", "text", "label")
    imdb, imdb_y, _ = read("imdb.csv", "input", "concepts")
    if quick:  # every nth row keeps the classes' shares
        sms_train, sms_train_y = sms_train[::8], sms_train_y[::8]
        sms_test, sms_test_y = sms_test[::3], sms_test_y[::3]
        imdb, imdb_y = imdb[::8], imdb_y[::8]
    sms = sms_train + sms_test
    sms_y = np.concatenate([sms_train_y, sms_test_y])
    sms_splits = [(np.arange(len(sms_train)), np.arange(len(sms_train), len(sms)))]
    repeats = 1 if quick else IMDB_REPEATS
    splitter = RepeatedStratifiedKFold(n_splits=IMDB_SPLITS, n_repeats=repeats, random_state=0)
    imdb_splits = list(splitter.split(imdb, imdb_y))
    sets = {"SMS": (sms, sms_y, sms_splits), "IMDB": (imdb, imdb_y, imdb_splits)}

    loads = {}
    encoders: dict[str, Callable] = {}
    for name, model_id in VARIANTS.items():
        started = time.perf_counter()
        encoders[name] = embedders.get_embedder(model_id).encode
        loads[name] = time.perf_counter() - started
    model = embedders.get_embedder(BUNDLED_MODEL)._model
    encoders = {
        RAW: lambda t: model.encode(t, show_progress_bar=False, normalize_embeddings=True),
        **encoders,
    }
    for encode in encoders.values():  # warm-up: first calls allocate
        encode(sms[:32])

    runs = 2 if quick else 3
    rates: dict[str, dict] = {}
    accuracy: dict[str, dict[str, float]] = {name: {} for name in VARIANTS}
    for s, (texts, y, splits) in sets.items():
        rates[s], vectors = texts_per_second(encoders, texts, runs)
        for name in VARIANTS:
            accuracy[name][s] = accuracies(vectors[name], y, splits)
    base = "PyTorch (ours)"
    speedups = {n: {s: rates[s][n][0] / rates[s][base][0] for s in sets} for n in VARIANTS}
    losses = {n: {s: accuracy[base][s] - accuracy[n][s] for s in sets} for n in VARIANTS}
    choice = decide(speedups, losses)

    lines = [
        HEADING,
        "",
        f"The bundled all-MiniLM-L6-v2 on {machine()}, run {'quick' if quick else 'full'}: "
        f"{len(sms)} SMS texts (train + test) and {len(imdb)} IMDB reviews, median of "
        f"{runs} runs (min–max), all variants taking turns in each run; batches of 64 "
        "(int8 runs one text at a time: its dynamic quantisation scales activations per run). "
        "Accuracy: `LogisticRegression()` on each variant's embeddings, SMS on its given "
        f"split, IMDB the mean of {IMDB_SPLITS * repeats} stratified splits "
        f"({repeats} × {IMDB_SPLITS}-fold, seed 0).",
        "",
        "| backend | SMS texts/s | IMDB texts/s | vs ours PyTorch (SMS / IMDB) "
        "| SMS accuracy | IMDB accuracy | load (export if not cached) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in encoders:
        cells = [
            f"{rates[s][name][0]:.0f} ({rates[s][name][1]:.0f}–{rates[s][name][2]:.0f})"
            for s in sets
        ]
        ratio = " / ".join(f"{rates[s][name][0] / rates[s][base][0]:.2f}×" for s in sets)
        acc = [f"{accuracy[name][s]:.1%}" if name in accuracy else "as ours" for s in sets]
        load = f"{loads[name]:.1f} s" if name in loads else "—"
        lines.append(f"| {name} | {' | '.join(cells)} | {ratio} | {' | '.join(acc)} | {load} |")
    verdict = {
        ONNX_INT8_MODEL: "ONNX int8 meets it",
        ONNX_MODEL: "ONNX int8 does not meet it; ONNX fp32 is faster on every set",
        BUNDLED_MODEL: "neither ONNX variant is faster on every set",
    }[choice]
    int8 = ", ".join(
        f"{s} {speedups['ONNX int8'][s]:.2f}× as fast, "
        f"{losses['ONNX int8'][s] * 100:.1f} points less accurate"
        for s in sets
    )
    quick_note = " (quick data: indicative only)" if quick else ""
    lines += [
        "",
        f"Rule: int8 becomes the default if it is at least {INT8_SPEEDUP}× as fast as PyTorch "
        f"with at most {INT8_MAX_LOSS * 100:.1f} points lower accuracy on every set; otherwise "
        f"fp32 ONNX if it is faster; else PyTorch. int8: {int8}. "
        f"**Decision{quick_note}: `{choice}`** ({verdict}).",
        "",
        chart(rates),
    ]
    return lines


def chart(rates: dict[str, dict]) -> str:
    fig, ax = charts.figure("Embedding throughput (texts/s, higher is better)")
    names = list(next(iter(rates.values())))
    width = 0.8 / len(names)
    colours = [charts.RAW, charts.OURS, "#2e9e6a", "#d9822b"]
    for i, name in enumerate(names):
        positions = [j + (i - (len(names) - 1) / 2) * width for j in range(len(rates))]
        label = name.split(":")[0] + (" raw" if name == RAW else "")
        ax.bar(positions, [rates[s][name][0] for s in rates], width, label=label, color=colours[i])
    ax.set_xticks(range(len(rates)), list(rates), fontsize=9)
    ax.set_ylabel("texts/s")
    ax.legend(frameon=False, fontsize=8)
    return charts.save(fig, "embedders")


if __name__ == "__main__":
    from bench.common import setup_django

    setup_django()  # the portal's settings: the same ONNX cache as the server's
    print("\n".join(run("--quick" in sys.argv)))

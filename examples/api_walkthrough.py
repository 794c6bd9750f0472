"""The portal's API walkthrough (Text Classifier → Via the API), against a Textcat Portal.

    python examples/api_walkthrough.py --url http://127.0.0.1:8000 --token KEY \\
        imdb.csv test_imdb.csv

Creates an app, uploads the training CSV into a dataset and bookmarks a version, creates
an embedding-classifier model, sets its parameters from the data, trains it, predicts a
few texts, evaluates it on the training set (k-fold cross-validation) and on the test
CSV (held-out), and compares the two evaluations. Make a token under your name → API
tokens, or with `manage.py create_api_token USERNAME`; --token defaults to $TEXTCAT_TOKEN.
"""

import argparse
import csv
import io
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from pprint import pformat

from portal.client import (
    TRAINED,
    TRAINING_FAILED,
    ApiError,
    App,
    Client,
    JobFailed,
    Model,
    csv_delimiter,
)

TEXT_COLUMNS = ("input", "input.data.text.raw", "text")
EXAMPLE_TEXT = "This is a great place to work"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    client = Client(args.url, args.token, poll_interval=args.poll_interval)
    try:
        walk_through(client, args)
    except (ApiError, TimeoutError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("train_csv", type=Path, help="the training data (input,concepts)")
    parser.add_argument("test_csv", type=Path, nargs="?", help="a test set in the same format")
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the portal's address")
    parser.add_argument("--token", default=os.getenv("TEXTCAT_TOKEN"), help="an API token key")
    parser.add_argument("--app-id", default="demo_train")
    parser.add_argument("--dataset-id", default="text_dataset")
    parser.add_argument("--test-dataset-id", default="test_text_dataset")
    parser.add_argument("--model-id", default="model_text_embedder")
    parser.add_argument(
        "--enrich-dataset",
        choices=("Automatic", "Disabled"),
        default="Automatic",
        help="add the background corpus as negatives (the portal's default: Automatic)",
    )
    parser.add_argument(
        "--text", action="append", dest="texts", help="a text to predict (repeatable)"
    )
    parser.add_argument(
        "--replace", action="store_true", help="delete the app first if it already exists"
    )
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per job")
    parser.add_argument("--poll-interval", type=float, default=1.0, help="seconds")
    args = parser.parse_args(argv)
    if not args.token:
        parser.error("give --token KEY or set TEXTCAT_TOKEN (Settings → API tokens)")
    for path in (args.train_csv, args.test_csv):
        if path is not None and not path.is_file():
            parser.error(f"no such file: {path}")
    return args


def walk_through(client: Client, args: argparse.Namespace) -> None:
    step(1, "App creation")
    if args.replace and any(a["id"] == args.app_id for a in client.list_apps()):
        client.delete_app(args.app_id)
        print(f"Deleted the existing app {args.app_id}")
    try:
        app = client.create_app(args.app_id, description="Text classifier walkthrough")
    except ApiError as exc:
        if exc.status != 400 or "already have an app" not in exc.message:
            raise
        hint = "run with --replace to delete it first, or give another --app-id"
        raise ApiError(400, f"{exc.message} ({hint})") from None
    print(f"App {app.id} created")

    step(2, "Dataset upload")
    dataset = app.create_dataset(args.dataset_id)
    upload = dataset.upload_from_csv(args.train_csv, labels=True)
    print(f"Uploaded {args.train_csv.name} into dataset {dataset.id}: {counts(upload)}")
    version_id = dataset.create_version()
    print(f"Dataset version {version_id} is READY")

    step(3, "Model creation")
    print("Trainable model types:", app.list_trainable_model_types())
    model = app.create_model(args.model_id, model_type_id="embedding-classifier")
    print(f"Model with ID '{model.id}' is created")

    step(4, "Model parameters")
    concepts = [concept["id"] for concept in app.list_concepts()]
    print(f"Available concepts: {concepts}")
    print(f"Current model parameters:\n{pformat(model.get_params(), sort_dicts=False)}")
    params = model.update_params(
        dataset_id=dataset.id,
        dataset_version_id=version_id,
        concepts=concepts,
        train_params={"enrich_dataset": args.enrich_dataset},
    )
    print("Model parameters updated successfully")
    print(pformat(params, sort_dicts=False))

    step(5, "Model training")
    model_version_id = model.train()
    print(f"Training version {model_version_id}")
    status = wait_for_training(model, model_version_id, args.timeout, args.poll_interval)
    print(status)
    if status["code"] != TRAINED:
        raise JobFailed(200, f"training failed: {status['description']}")

    step(6, "Model prediction")
    texts = args.texts or [EXAMPLE_TEXT, *csv_texts(args.test_csv or args.train_csv)[:1]]
    for text, output in zip(texts, model.predict_texts(texts), strict=True):
        print(f"Input: {shorten(text)!r}")
        for concept in output:
            print(concept["id"], ":", round(concept["value"], 2))

    step(7, "Model evaluation")
    train_eval = evaluate(model, dataset.id, version_id, "one", args.timeout, use_kfold=True)
    if args.test_csv is None:
        print("\nNo test CSV given: no held-out evaluation and no comparison.")
        return
    test_dataset = app.create_dataset(args.test_dataset_id)
    upload = test_dataset.upload_from_csv(args.test_csv, labels=True)
    print(f"\nUploaded {args.test_csv.name} into dataset {test_dataset.id}: {counts(upload)}")
    print(overlap_note(args.train_csv, args.test_csv))
    test_version_id = test_dataset.create_version()
    test_eval = evaluate(model, test_dataset.id, test_version_id, "two", args.timeout)

    print("\nComparison")
    print_comparison(app, [train_eval, test_eval])


def step(number: int, title: str) -> None:
    print(f"\n=== Step {number}: {title} ===")


def counts(upload: dict) -> str:
    """The counts of a 201 answer or of a finished import job."""
    return f"{upload['created']} inputs added, {upload['skipped']} skipped (already there)"


def wait_for_training(model: Model, version_id: str, timeout: float, interval: float) -> dict:
    """Poll the training status, printing it whenever it changes, as the walkthrough does."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        status = model.training_status(version_id, training_logs=False)
        if status["code"] in (TRAINED, TRAINING_FAILED):
            return status
        if status != last:
            print("Current Status:", status)
            print("Waiting---")
            last = status
        if time.monotonic() > deadline:
            raise TimeoutError(f"training didn't finish within {timeout:g} s")
        time.sleep(interval)


def evaluate(
    model: Model,
    dataset_id: str,
    dataset_version_id: str,
    eval_id: str,
    timeout: float,
    use_kfold: bool | None = None,
) -> dict:
    model.evaluate(
        dataset_id=dataset_id,
        dataset_version_id=dataset_version_id,
        eval_id=eval_id,
        use_kfold=use_kfold,
    )
    result = model.wait_for_evaluation(eval_id, timeout=timeout)
    print(f"\nEvaluation '{eval_id}' on {dataset_id} v{dataset_version_id} ({result['method']}):")
    print(summary_text(result["summary"]))
    return result


def summary_text(summary: dict) -> str:
    lines = []
    for key in (
        "macro_avg_roc_auc",
        "macro_avg_f1_score",
        "macro_avg_precision",
        "macro_avg_recall",
        "accuracy",
    ):
        value = summary.get(key)
        if value is None:
            why = "concepts not mutually exclusive" if key == "accuracy" else "one class only"
            lines.append(f"{key}: n/a ({why})")
        else:
            lines.append(f"{key}: {round(value, 4)}")
    return "\n".join(lines)


def print_comparison(app: App, evaluations: list[dict]) -> None:
    comparison = app.compare(evaluations)
    print(comparison["description"])
    by_id = {e["id"]: e for e in comparison["evaluations"]}
    per_concept = [
        [
            row["metrics"]["concept"],
            row["metrics"]["roc_auc"],
            row["metrics"]["labeled"],
            row["metrics"]["predicted"],
            row["metrics"]["tp"],
            row["metrics"]["fn"],
            row["metrics"]["fp"],
            row["metrics"]["recall"],
            row["metrics"]["precision"],
            row["metrics"]["f1"],
            by_id[row["evaluation_id"]]["dataset_id"],
        ]
        for evaluation in comparison["evaluations"]
        for concept in comparison["concepts"]
        for row in concept["rows"]
        if row["evaluation_id"] == evaluation["id"] and row["metrics"]
    ]
    print()
    print(
        table(
            [
                "Concept",
                "ROC AUC",
                "Total Labeled",
                "Total Predicted",
                "True Positives",
                "False Negatives",
                "False Positives",
                "Recall",
                "Precision",
                "F1",
                "Dataset",
            ],
            per_concept,
        )
    )
    totals = [
        [
            f"Dataset:{e['dataset_id']}",
            e["summary"]["macro_avg_roc_auc"],
            e["summary"]["n_rows"],
            e["summary"]["macro_avg_recall"],
            e["summary"]["macro_avg_precision"],
            e["summary"]["macro_avg_f1_score"],
            e["summary"]["accuracy"],
            e["method"],
        ]
        for e in comparison["evaluations"]
    ]
    print()
    print(
        table(
            ["Total", "ROC AUC", "Inputs", "Recall", "Precision", "F1", "Accuracy", "Method"],
            totals,
        )
    )


def table(headers: list[str], rows: list[list]) -> str:
    """A plain-text table: text left-aligned, numbers right-aligned, 4 decimals at most."""
    cells = [[cell_text(value) for value in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    numeric = [all(isinstance(row[i], int | float) for row in rows) for i in range(len(headers))]

    def line(values: list[str]) -> str:
        return "  ".join(
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ).rstrip()

    return "\n".join([line(headers), *(line(r) for r in cells)])


def cell_text(value: object) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return str(round(value, 4))
    return str(value)


def csv_texts(path: Path) -> list[str]:
    """The texts of a CSV in one of the formats the portal reads ([] if none is found)."""
    text = path.read_text(encoding="utf-8-sig")
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=csv_delimiter(text))
    column = next((c for c in TEXT_COLUMNS if c in (reader.fieldnames or [])), None)
    if column is None:
        return []
    return [row[column].strip() for row in reader if (row[column] or "").strip()]


def overlap_note(train_csv: Path, test_csv: Path) -> str:
    """Whether the test texts also occur in the training data: then the test numbers are
    not an estimate for texts the model has never seen."""
    train, test = set(csv_texts(train_csv)), set(csv_texts(test_csv))
    shared = len(test & train)
    if test and shared == len(test):
        return (
            f"Note: all {len(test)} texts of {test_csv.name} also occur in {train_csv.name}: "
            "the test set overlaps the training set, so its numbers are not a held-out "
            "estimate (the k-fold numbers on the training set are)."
        )
    if shared:
        return (
            f"Note: {shared} of the {len(test)} texts of {test_csv.name} also occur in "
            f"{train_csv.name}; the test numbers are partly not held-out."
        )
    return f"The texts of {test_csv.name} don't occur in {train_csv.name}: a held-out test set."


def shorten(text: str, limit: int = 100) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


if __name__ == "__main__":
    sys.exit(main())

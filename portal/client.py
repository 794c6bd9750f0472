"""A Python client for the portal's REST API (/api/v1/), with the portal SDK's verbs.

Only the standard library is needed: this one file can be copied next to a script that
runs where the portal isn't installed.

    from portal.client import Client

    client = Client("http://127.0.0.1:8000", "tcp_...")  # Settings → API tokens
    app = client.create_app("demo_train")
    dataset = app.create_dataset("text_dataset")
    dataset.upload_from_csv("imdb.csv", labels=True)
    version_id = dataset.create_version()
    model = app.create_model("model_text_embedder")
    model.update_params(dataset_id="text_dataset", concepts=["pos", "neg"])
    model.wait_until_trained(model.train())
    print(model.predict_by_bytes(b"This is a great place to work", input_type="text"))

Every error answer of the server raises `ApiError(status, message)`; a background job
(upload, dataset version, training, evaluation) that fails raises `JobFailed`, and one
that takes longer than its timeout raises `TimeoutError`. A server that can't be reached
raises urllib's `URLError` (an `OSError`).
"""

import csv
import io
import json
import mimetypes
import re
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urljoin

DEFAULT_MODEL_TYPE = "embedding-classifier"
TRAINED, TRAINING_FAILED = 21100, 21106
EVALUATED, EVALUATION_FAILED = 21300, 21317
# CSV columns that hold labels, in the formats the portal reads (see portal.csv_io).
LABEL_COLUMNS = frozenset({"concepts", "negative_concepts", "concept", "label", "labels"})
PORTAL_LABEL_PREFIX = "input.data.concepts["


class ApiError(Exception):
    """The server answered with an error: `status` is the HTTP status, `message` its text."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class JobFailed(ApiError):
    """A background job ended in failure; `status` is that of the answer that said so."""


def _segment(value: object) -> str:
    return quote(str(value), safe="")


class Client:
    """A connection to one portal as one user.

    >>> client = Client("http://127.0.0.1:8000", "tcp_...")
    >>> app = client.create_app("demo_train", description="IMDB reviews")
    """

    def __init__(
        self, base_url: str, token: str, *, timeout: float = 120.0, poll_interval: float = 0.5
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_url = f"{self.base_url}/api/v1/"
        self.token = token
        self.timeout = timeout  # seconds for one HTTP request
        self.poll_interval = poll_interval  # seconds between two looks at a job

    def __repr__(self) -> str:
        return f"Client({self.base_url!r})"

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: dict[str, Any] | None = None,
        data: bytes | None = None,
        content_type: str | None = None,
    ) -> Any:
        """Send one request and return the decoded JSON answer (None when there is none).

        `path` is relative to /api/v1/ ("apps/demo_train") or a URL the server gave.
        `body` is sent as JSON; `data` as is, with `content_type`.
        """
        url = urljoin(self.api_url, path)
        if query:
            url += "?" + urlencode(query)
        headers = {"Authorization": f"Token {self.token}", "Accept": "application/json"}
        if body is not None:
            data = json.dumps(body).encode()
            content_type = "application/json"
        if content_type:
            headers["Content-Type"] = content_type
        req = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as response:
                return _decode(response.read())
        except urllib.error.HTTPError as exc:
            raise ApiError(exc.code, _error_message(exc)) from None

    def get(self, path: str, **query: Any) -> Any:
        return self.request("GET", path, query=query or None)

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, {} if body is None else body)

    def wait(
        self,
        fetch: Callable[[], Any],
        finished: Callable[[Any], bool],
        timeout: float,
        what: str,
    ) -> Any:
        """Call `fetch` until `finished` accepts its answer; return that answer."""
        deadline = time.monotonic() + timeout
        while True:
            answer = fetch()
            if finished(answer):
                return answer
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} didn't finish within {timeout:g} s")
            time.sleep(self.poll_interval)

    def list_apps(self) -> list[dict]:
        return _items(self.get("apps"), "apps")

    def create_app(self, app_id: str, description: str = "") -> "App":
        """Create an app and return it: `client.create_app("demo_train")`."""
        self.post("apps", {"id": app_id, "description": description})
        return App(self, app_id)

    def app(self, app_id: str) -> "App":
        """An existing app, without a request: a wrong ID fails at the first call."""
        return App(self, app_id)

    def delete_app(self, app_id: str) -> None:
        """Delete an app and everything in it."""
        self.request("DELETE", f"apps/{_segment(app_id)}")


class App:
    """An app: its datasets, concepts and models.

    >>> app = client.app("demo_train")
    >>> app.list_trainable_model_types()
    ['embedding-classifier']
    """

    def __init__(self, client: Client, app_id: str) -> None:
        self.client = client
        self.id = app_id
        self.path = f"apps/{_segment(app_id)}"

    def __repr__(self) -> str:
        return f"App({self.id!r})"

    def info(self) -> dict:
        return self.client.get(self.path)

    def create_dataset(self, dataset_id: str, description: str = "") -> "Dataset":
        """`dataset = app.create_dataset("text_dataset")`."""
        self.client.post(self.path + "/datasets", {"id": dataset_id, "description": description})
        return Dataset(self, dataset_id)

    def dataset(self, dataset_id: str) -> "Dataset":
        return Dataset(self, dataset_id)

    def list_datasets(self) -> list[dict]:
        return _items(self.client.get(self.path + "/datasets"), "datasets")

    def list_concepts(self) -> list[dict]:
        """The app's concepts: `[{"id": "pos", "name": "pos"}, ...]`."""
        return _items(self.client.get(self.path + "/concepts"), "concepts")

    def create_concept(self, concept_id: str, name: str = "") -> dict:
        return self.client.post(
            self.path + "/concepts", {"id": concept_id, "name": name or concept_id}
        )

    def list_trainable_model_types(self) -> list[str]:
        """The IDs of the model types this server trains: `["embedding-classifier"]`."""
        types = _items(self.client.get("model-types"), "model_types")
        return [t["id"] for t in types]

    def create_model(self, model_id: str, model_type_id: str = DEFAULT_MODEL_TYPE) -> "Model":
        """`model = app.create_model("model_text_embedder")`: a Transfer Learn model."""
        self.client.post(self.path + "/models", {"id": model_id, "model_type_id": model_type_id})
        return Model(self, model_id)

    def model(self, model_id: str) -> "Model":
        return Model(self, model_id)

    def list_models(self) -> list[dict]:
        return _items(self.client.get(self.path + "/models"), "models")

    def compare(self, evaluations: Iterable[int | str | dict]) -> dict:
        """Compare finished evaluations, given by ID or as `evaluate` / `get_eval_by_id`
        returned them: their summaries side by side and, per concept, one row each.

        >>> comparison = app.compare([train_eval, test_eval])
        >>> comparison["concepts"][0]["rows"][0]["metrics"]["f1"]
        1.0
        """
        ids = [int(e["id"] if isinstance(e, dict) else e) for e in evaluations]
        return self.client.post(self.path + "/evaluations/compare", {"evaluations": ids})


class Dataset:
    """A dataset of an app: inputs go in, versions bookmark it.

    >>> dataset = app.dataset("text_dataset")
    >>> dataset.upload_from_csv("imdb.csv", labels=True)
    >>> dataset.create_version()
    '1'
    """

    def __init__(self, app: App, dataset_id: str) -> None:
        self.app = app
        self.client = app.client
        self.id = dataset_id
        self.path = f"{app.path}/datasets/{_segment(dataset_id)}"

    def __repr__(self) -> str:
        return f"Dataset({self.app.id!r}, {self.id!r})"

    def info(self) -> dict:
        return self.client.get(self.path)

    def upload_from_csv(
        self,
        csv_path: str | Path,
        labels: bool = True,
        *,
        input_type: str = "text",
        csv_type: str = "raw",
        timeout: float = 600.0,
    ) -> dict:
        """Upload a CSV file of texts (the SDK's `input,concepts` format, the portal's
        export format, or `text,label`) into this dataset; wait until it is imported.

        labels=False uploads the texts only, without the label columns. Returns the
        server's counts (or the finished import job). `input_type` and `csv_type` are
        accepted as in the SDK; only "text" and "raw" exist here.
        """
        if input_type != "text" or csv_type != "raw":
            raise ValueError('only input_type="text" with csv_type="raw" is supported')
        path = Path(csv_path)
        content = path.read_bytes()
        if not labels:
            content = _without_label_columns(content)
        body, content_type = _multipart("file", path.name, content)
        answer = self.client.request(
            "POST", self.path + "/inputs", data=body, content_type=content_type
        )
        return self._finished_job(answer, timeout)

    def upload_texts(
        self,
        texts: Sequence[str],
        concepts: Sequence[Sequence[str]] | None = None,
        negative_concepts: Sequence[Sequence[str]] | None = None,
        *,
        timeout: float = 600.0,
    ) -> dict:
        """Upload texts, with one list of concepts per text when given.

        >>> dataset.upload_texts(["Win a prize!", "Lunch at noon?"], concepts=[["spam"], ["ham"]])
        """
        for name, lists in (("concepts", concepts), ("negative_concepts", negative_concepts)):
            if lists is not None and (isinstance(lists, str) or len(lists) != len(texts)):
                raise ValueError(f"{name} must hold one list of concept IDs per text")
        inputs = [
            {
                "text": text,
                "concepts": list(concepts[i]) if concepts else [],
                "negative_concepts": list(negative_concepts[i]) if negative_concepts else [],
            }
            for i, text in enumerate(texts)
        ]
        answer = self.client.post(self.path + "/inputs", {"inputs": inputs})
        return self._finished_job(answer, timeout)

    def _finished_job(self, answer: dict, timeout: float) -> dict:
        job_url = _job_url(answer)
        if job_url is None:
            return answer
        job = self.client.wait(
            lambda: self.client.get(job_url),
            lambda job: _status_name(job) in ("DONE", "FAILED"),
            timeout,
            f"the upload into dataset {self.id}",
        )
        if _status_name(job) == "FAILED":
            raise JobFailed(200, f"the upload failed: {_job_error(job)}")
        return job

    def list_versions(self) -> list[dict]:
        return _items(self.client.get(self.path + "/versions"), "versions")

    def create_version(self, timeout: float = 600.0) -> str:
        """Bookmark the dataset as it is now; wait until the version is READY; return its ID."""
        version_id = str(self.client.post(self.path + "/versions")["id"])
        version = self.client.wait(
            lambda: self.client.get(f"{self.path}/versions/{_segment(version_id)}"),
            lambda v: _status_name(v) in ("READY", "FAILURE"),
            timeout,
            f"version {version_id} of dataset {self.id}",
        )
        if _status_name(version) != "READY":
            raise JobFailed(200, f"version {version_id} failed: {_job_error(version)}")
        return version_id


class Model:
    """A trainable model of an app: parameters, versions, predictions, evaluations.

    >>> model = app.model("model_text_embedder")
    >>> version_id = model.train()
    >>> model.wait_until_trained(version_id)
    {'code': 21100, 'name': 'MODEL-TRAINED', 'description': 'Model is trained and ready'}
    >>> model.predict_texts(["This is a great place to work"])
    [[{'id': 'pos', 'name': 'pos', 'value': 0.93}, {'id': 'neg', 'name': 'neg', 'value': 0.07}]]
    """

    def __init__(self, app: App, model_id: str) -> None:
        self.app = app
        self.client = app.client
        self.id = model_id
        self.path = f"{app.path}/models/{_segment(model_id)}"
        # An evaluation's name or ID -> (its ID on the server, the version it evaluates).
        self._evals: dict[str, tuple[str, str]] = {}

    def __repr__(self) -> str:
        return f"Model({self.app.id!r}, {self.id!r})"

    def info(self) -> dict:
        return self.client.get(self.path)

    def get_params(self) -> dict:
        """The training parameters, in the portal's template (dataset_id, concepts, ...)."""
        return self.client.get(self.path + "/params")

    def update_params(self, **params: Any) -> dict:
        """Change some parameters and return them all; the server merges nested ones
        (train_params, inference_params) key by key.

        A key that isn't in the template raises ValueError before anything is sent; the
        server refuses unknown nested keys and wrong values with ApiError 400.

        >>> model.update_params(dataset_id="text_dataset", train_params={"C": 1.0})
        """
        unknown = sorted(set(params) - set(self.get_params()))
        if unknown:
            raise ValueError(
                f"Invalid params: {', '.join(unknown)} (the parameters are those of get_params())"
            )
        return self.client.request("PATCH", self.path + "/params", params)

    def list_versions(self) -> list[dict]:
        return _items(self.client.get(self.path + "/versions"), "versions")

    def train(self) -> str:
        """Start training a new version with the current parameters; return its ID."""
        return str(self.client.post(self.path + "/versions")["id"])

    def training_status(self, version_id: str, training_logs: bool = False) -> dict:
        """The version's status: `{"code": 21100, "name": "MODEL-TRAINED", ...}`; with
        training_logs=True the training log is added as "logs"."""
        query = {"logs": "true"} if training_logs else {}
        version = self.client.get(f"{self.path}/versions/{_segment(version_id)}", **query)
        status = dict(version["status"])
        if training_logs:
            status["logs"] = version.get("log", "")
        return status

    def wait_until_trained(self, version_id: str, timeout: float = 900.0) -> dict:
        """Wait for MODEL-TRAINED and return the status; a failed training raises JobFailed."""
        status = self.client.wait(
            lambda: self.training_status(version_id),
            lambda s: s["code"] in (TRAINED, TRAINING_FAILED),
            timeout,
            f"training version {version_id} of model {self.id}",
        )
        if status["code"] == TRAINING_FAILED:
            raise JobFailed(200, f"training failed: {status.get('description') or status}")
        return status

    def latest_trained_version(self) -> str:
        trained = [v for v in self.list_versions() if _status_code(v) == TRAINED]
        if not trained:
            raise ApiError(400, f"model {self.id} has no trained version yet")
        return str(max(trained, key=lambda v: _number(v["id"]))["id"])

    def predict(
        self,
        texts: Sequence[str],
        version_id: str | None = None,
        inference_params: dict | None = None,
    ) -> dict:
        """The server's whole answer: `{"model_version_id": "1", "outputs": [...]}`."""
        body: dict[str, Any] = {"texts": list(texts)}
        if version_id is not None:
            body["version_id"] = version_id
        if inference_params is not None:
            body["inference_params"] = inference_params
        return self.client.post(self.path + "/predict", body)

    def predict_texts(
        self,
        texts: Sequence[str],
        version_id: str | None = None,
        inference_params: dict | None = None,
    ) -> list[list[dict]]:
        """For each text, its concepts with their values, the most likely first."""
        answer = self.predict(texts, version_id, inference_params)
        return [output["concepts"] for output in answer["outputs"]]

    def predict_by_bytes(
        self,
        input_bytes: bytes,
        input_type: str = "text",
        version_id: str | None = None,
        inference_params: dict | None = None,
    ) -> list[dict]:
        """One UTF-8 text's concepts: `model.predict_by_bytes(b"Great film", input_type="text")`."""
        if input_type != "text":
            raise ValueError('only input_type="text" is supported')
        text = input_bytes.decode("utf-8")
        return self.predict_texts([text], version_id, inference_params)[0]

    def feedback(
        self,
        text: str,
        concepts: Sequence[str],
        negative_concepts: Sequence[str] = (),
        dataset_id: str | None = None,
    ) -> dict:
        """Add a text with its corrected concepts to a dataset (by default the model's
        training dataset); returns the input, relabeled if the text was already one."""
        body: dict[str, Any] = {
            "text": text,
            "concepts": list(concepts),
            "negative_concepts": list(negative_concepts),
        }
        if dataset_id is not None:
            body["dataset_id"] = dataset_id
        return self.client.post(self.path + "/feedback", body)

    def evaluate(
        self,
        dataset_id: str,
        dataset_version_id: str | None = None,
        eval_id: str | None = None,
        use_kfold: bool | None = None,
        version_id: str | None = None,
    ) -> dict:
        """Start evaluating a trained version (the latest by default) on a dataset (its
        latest ready version by default) and return the queued evaluation.

        On the dataset version the model was trained on, the server uses k-fold
        cross-validation; on any other, it scores a held-out test set. `use_kfold` states
        which one you expect (the server refuses a mismatch). The server numbers
        evaluations itself (the answer's "id"); `eval_id` is a name for it, which
        `get_eval_by_id` and `wait_for_evaluation` accept in place of the number.

        >>> model.evaluate(dataset_id="test_text_dataset", eval_id="two")
        """
        version_id = str(version_id) if version_id is not None else self.latest_trained_version()
        body: dict[str, Any] = {"dataset_id": dataset_id}
        if dataset_version_id is not None:
            body["dataset_version_id"] = str(dataset_version_id)
        if use_kfold is not None:
            body["use_kfold"] = use_kfold
        if eval_id is not None:
            body["eval_id"] = str(eval_id)
        path = f"{self.path}/versions/{_segment(version_id)}/evaluations"
        evaluation = self.client.post(path, body)
        server_id = str(evaluation["id"])
        self._evals[server_id] = (server_id, version_id)
        if eval_id is not None:
            self._evals[str(eval_id)] = (server_id, version_id)
        return evaluation

    def list_evaluations(self, version_id: str | None = None) -> list[dict]:
        version_id = str(version_id) if version_id is not None else self.latest_trained_version()
        answer = self.client.get(f"{self.path}/versions/{_segment(version_id)}/evaluations")
        return _items(answer, "evaluations")

    def get_eval_by_id(self, eval_id: str | int, version_id: str | None = None) -> dict:
        """An evaluation, by its number or the eval_id it was given: status, summary,
        per_concept, confusion_matrix, curves. The version defaults to the one this handle
        evaluated, else the latest trained one.

        >>> model.get_eval_by_id("two")["summary"]["macro_avg_roc_auc"]
        0.97
        """
        server_id, version_id = self._find_eval(str(eval_id), version_id)
        path = f"{self.path}/versions/{_segment(version_id)}/evaluations/{_segment(server_id)}"
        return self.client.get(path)

    def _find_eval(self, eval_id: str, version_id: str | None) -> tuple[str, str]:
        """(the evaluation's number, its model version) for a number or a name."""
        server_id, evaluated = self._evals.get(eval_id, (eval_id, None))
        version_id = str(version_id or evaluated or self.latest_trained_version())
        if evaluated is None and not eval_id.isdigit():
            named = [e for e in self.list_evaluations(version_id) if e.get("eval_id") == eval_id]
            if named:  # newest first: the last one given this name
                server_id = str(named[0]["id"])
                self._evals[eval_id] = (server_id, version_id)
        return server_id, version_id

    def wait_for_evaluation(
        self, eval_id: str | int, version_id: str | None = None, timeout: float = 900.0
    ) -> dict:
        """Wait for MODEL-EVALUATED and return the evaluation; a failure raises JobFailed."""
        evaluation = self.client.wait(
            lambda: self.get_eval_by_id(eval_id, version_id),
            lambda e: _status_code(e) in (EVALUATED, EVALUATION_FAILED),
            timeout,
            f"evaluation {eval_id} of model {self.id}",
        )
        if _status_code(evaluation) == EVALUATION_FAILED:
            raise JobFailed(200, f"evaluation {eval_id} failed: {_job_error(evaluation)}")
        return evaluation


def _decode(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


def _error_message(exc: urllib.error.HTTPError) -> str:
    answer = _decode(exc.read())
    if isinstance(answer, dict) and "error" in answer:
        return str(answer["error"])
    return str(answer).strip()[:500] if answer else str(exc.reason)


def _items(answer: Any, key: str) -> list:
    """A list answer, or the list under `key` of an object answer."""
    return answer[key] if isinstance(answer, dict) else answer


def _status_name(thing: dict) -> str:
    status = thing.get("status")
    return str(status.get("name", "") if isinstance(status, dict) else status)


def _status_code(thing: dict) -> int | None:
    status = thing.get("status")
    return status.get("code") if isinstance(status, dict) else None


def _job_error(thing: dict) -> str:
    for key in ("error", "errors", "description"):
        value = thing.get(key)
        if value:
            return "; ".join(map(str, value)) if isinstance(value, list) else str(value)
    status = thing.get("status")
    if isinstance(status, dict) and status.get("description"):
        return str(status["description"])
    return "no reason given"


def _job_url(answer: Any) -> str | None:
    if not isinstance(answer, dict):
        return None
    for key in ("url", "job_url"):
        if isinstance(answer.get(key), str):
            return answer[key]
    return None


def _number(value: object) -> int:
    text = str(value)
    return int(text) if text.isdigit() else -1


def _multipart(field: str, filename: str, content: bytes) -> tuple[bytes, str]:
    boundary = "----textcat" + secrets.token_hex(16)
    kind = mimetypes.guess_type(filename)[0] or "text/csv"
    safe_name = filename.replace('"', "").replace("\r", "").replace("\n", "")
    body = b"".join(
        [
            f"--{boundary}\r\n".encode(),
            f'Content-Disposition: form-data; name="{field}"; filename="{safe_name}"\r\n'.encode(),
            f"Content-Type: {kind}\r\n\r\n".encode(),
            content,
            f"\r\n--{boundary}--\r\n".encode(),
        ]
    )
    return body, f"multipart/form-data; boundary={boundary}"


def csv_delimiter(text: str) -> str:
    """The server's rule: the delimiter the header line holds most of, outside quotes."""
    header = re.sub(r'"[^"]*"', "", text.partition("\n")[0])
    return max((",", ";", "\t"), key=header.count)


def _without_label_columns(content: bytes) -> bytes:
    """The CSV without the columns that hold concepts, in the same delimiter."""
    text = content.decode("utf-8-sig")
    delimiter = csv_delimiter(text)
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    if not rows:
        return content
    keep = [
        i
        for i, name in enumerate(rows[0])
        if name.strip().lower() not in LABEL_COLUMNS
        and not name.strip().lower().startswith(PORTAL_LABEL_PREFIX)
    ]
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    for row in rows:
        writer.writerow([row[i] for i in keep if i < len(row)])
    return out.getvalue().encode()

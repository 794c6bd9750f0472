"""Models are stored as arrays and never unpickled; no route takes a model file."""

import ast
import io
import pickle
from pathlib import Path

import numpy as np
import pytest

from classifier.head import ConceptHead, HeadFormatError
from portal.evaluating import EvaluationError, load_scores
from portal.models import ApiToken, Evaluation, ModelVersion

ROOT = Path(__file__).resolve().parent.parent
CODE = [
    path
    for folder in ("portal", "classifier", "bench")
    for path in sorted((ROOT / folder).rglob("*.py"))
    if "migrations" not in path.parts
]
UNSAFE_MODULES = {"pickle", "cPickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}

# The only places that read an uploaded file: CSV inputs (page and API) and batch
# prediction CSVs.
FILE_READERS = {
    ("portal/views/uploads.py", "_upload"),
    ("portal/views/predictions.py", "batch_page"),
    ("portal/api/inputs.py", "_import_csv"),
}
FILE_FORMS = {("portal/forms.py", "UploadForm")}
FILE_FIELDS = {"FileField", "ImageField", "FilePathField", "UploadedFile", "File"}


def parsed() -> list[tuple[str, ast.Module]]:
    return [(str(path.relative_to(ROOT)), ast.parse(path.read_text())) for path in CODE]


def name_of(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return f"{name_of(node.value)}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else ""


class Payload:
    """Unpickling this creates `path`: proof that code ran."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def pickle_payloads(path: Path) -> dict[str, bytes]:
    """Bytes that would run code if unpickled: a bare pickle, and .npz files whose
    arrays are pickled objects, shaped like a stored head and stored scores."""
    bare = pickle.dumps(Payload(path))
    evil = np.array([Payload(path)], dtype=object)
    head = io.BytesIO()
    np.savez(head, coef=evil, intercept=evil, meta=np.array('{"format_version": 1}'))
    scores = io.BytesIO()
    np.savez(scores, rows=evil, Y=evil, P=evil)
    return {"bare": bare, "head": head.getvalue(), "scores": scores.getvalue()}


def test_the_payloads_are_live(tmp_path):
    # Without this, a refused payload could just be a broken one.
    ran = tmp_path / "ran"
    pickle.loads(pickle_payloads(ran)["bare"])
    assert ran.exists()
    ran.unlink()
    with np.load(io.BytesIO(pickle_payloads(ran)["head"]), allow_pickle=True) as npz:
        npz["coef"]
    assert ran.exists()


def test_every_np_load_refuses_pickles():
    loads = []
    for path, tree in parsed():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and name_of(node.func) in ("np.load", "numpy.load"):
                allow = {k.arg: k.value for k in node.keywords}.get("allow_pickle")
                ok = allow is None or (isinstance(allow, ast.Constant) and allow.value is False)
                loads.append((path, node.lineno, ok))
    assert loads, "expected the head and scores loaders"
    assert [entry for entry in loads if not entry[2]] == []


def test_no_code_imports_a_pickle_module():
    found = []
    for path, tree in parsed():
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [(node.module or "").split(".")[0]]
            else:
                continue
            found += [(path, name) for name in names if name in UNSAFE_MODULES]
        assert "torch.load" not in ast.unparse(tree), path
    assert found == []


@pytest.mark.parametrize("kind", ["bare", "head", "scores"])
def test_a_pickled_head_is_refused_without_running_it(tmp_path, kind):
    ran = tmp_path / "ran"
    with pytest.raises(HeadFormatError):
        ConceptHead.loads(pickle_payloads(ran)[kind])
    assert not ran.exists()


@pytest.mark.parametrize("kind", ["bare", "head", "scores"])
def test_pickled_evaluation_scores_are_refused_without_running_them(tmp_path, kind):
    ran = tmp_path / "ran"
    with pytest.raises(EvaluationError, match="can't be read"):
        load_scores(Evaluation(data=pickle_payloads(ran)[kind]))
    assert not ran.exists()


@pytest.fixture
def poisoned(spam_model, tmp_path) -> tuple:
    """A "trained" version of `spam_model` whose stored head is a pickle payload."""
    ran = tmp_path / "ran"
    ModelVersion.objects.create(
        model=spam_model,
        number=1,
        status=ModelVersion.Status.TRAINED,
        params=spam_model.params,
        concepts=["spam", "ham"],
        head=pickle_payloads(ran)["head"],
    )
    return spam_model, ran


@pytest.mark.django_db
def test_the_try_page_refuses_a_pickled_head(alice_client, poisoned):
    model, ran = poisoned
    url = f"/apps/{model.app.slug}/models/{model.slug}/try/"
    response = alice_client.post(url, {"text": "Win a prize now"})
    assert response.status_code == 200
    assert b"stored head of version 1 can&#x27;t be read" in response.content
    assert not ran.exists()


@pytest.mark.django_db
def test_the_predict_api_refuses_a_pickled_head(client, alice, poisoned):
    model, ran = poisoned
    key = ApiToken.issue(alice, "laptop")[1]
    response = client.post(
        f"/api/v1/apps/{model.app.slug}/models/{model.slug}/predict",
        {"texts": ["Win a prize now"]},
        "application/json",
        HTTP_AUTHORIZATION=f"Token {key}",
    )
    assert response.status_code == 400
    assert "can't be read" in response.json()["error"]
    assert not ran.exists()


def test_only_csv_routes_read_uploaded_files():
    readers, forms = set(), set()
    for path, tree in parsed():
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and any(
                isinstance(inner, ast.Attribute) and inner.attr == "FILES"
                for inner in ast.walk(node)
            ):
                readers.add((path, node.name))
            if isinstance(node, ast.ClassDef) and any(
                name_of(inner).split(".")[-1] in FILE_FIELDS
                for inner in ast.walk(node)
                if isinstance(inner, ast.Name | ast.Attribute)
            ):
                forms.add((path, node.name))
    assert readers == FILE_READERS
    assert forms == FILE_FORMS


def test_the_api_takes_files_only_for_input_csvs():
    from portal.api import api

    schema = api.get_openapi_schema()
    multipart = sorted(
        (path, method)
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if "multipart/form-data" in operation.get("requestBody", {}).get("content", {})
    )
    assert multipart == [("/api/v1/apps/{app_id}/datasets/{dataset_id}/inputs", "post")]


def test_only_training_writes_a_head():
    writers = set()
    for path, tree in parsed():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and any(k.arg == "head" for k in node.keywords):
                writers.add(path)
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Attribute) and t.attr == "head" for t in node.targets
            ):
                writers.add(path)
    assert writers == {"portal/training.py"}

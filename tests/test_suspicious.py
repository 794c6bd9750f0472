import pytest

from portal import embedding, suspicious
from portal.models import (
    Annotation,
    App,
    Concept,
    Dataset,
    Input,
    ModelVersion,
    TrainableModel,
    default_params,
    text_hash,
)
from tests.conftest import HAM_TEXTS, SPAM_TEXTS

HX = {"HX-Request": "true"}
MORE_SPAM = [
    "You have won a brand new iPhone! Click the link to claim your prize today.",
    "Limited offer: earn $5000 a week from home, no experience needed. Sign up now!",
    "FREE ringtones! Text TONES to 80082 now, only 1.50 per message.",
]
MORE_HAM = [
    "Don't forget mum's birthday dinner on Sunday at seven.",
    "The meeting moved to room 4B, see you there at three.",
    "Did you finish the book I lent you last month?",
]
MISLABELED = "Congratulations! You've been chosen for a $1000 gift card. Call now to claim it!"
DUPLICATE_A = "Could you send me the slides from today's lecture, please?"
DUPLICATE_B = "Could you send me the slides from today's lecture please"


def add(app: App, text: str, **concepts: int) -> Input:
    item = Input.objects.create(app=app, text=text, text_hash=text_hash(text))
    for slug, value in concepts.items():
        concept = Concept.objects.get(app=app, slug=slug)
        Annotation.objects.create(input=item, concept=concept, value=value)
    return item


@pytest.fixture
def planted(app, spam, ham, embedder):
    """Sixteen right labels, a spam text labeled ham, and two near-duplicates labeled
    ham and spam. Returns the mislabeled input and the pair."""
    items = [add(app, text, spam=1) for text in SPAM_TEXTS + MORE_SPAM]
    items += [add(app, text, ham=1) for text in HAM_TEXTS + MORE_HAM]
    wrong = add(app, MISLABELED, ham=1)
    a, b = add(app, DUPLICATE_A, ham=1), add(app, DUPLICATE_B, spam=1)
    embedding.embed_inputs([i.pk for i in [*items, wrong, a, b]])
    return wrong, a, b


def labels_of_app(app: App) -> set[tuple]:
    return set(
        Annotation.objects.filter(input__app=app).values_list("input_id", "concept__slug", "value")
    )


def page(app: App) -> str:
    return f"/apps/{app.slug}/quality/suspicious/"


def fix_url(item: Input) -> str:
    return f"/apps/{item.app.slug}/quality/suspicious/{item.pk}/fix/"


def test_it_finds_the_planted_mislabeled_input(app, planted):
    wrong, _, b = planted
    report = suspicious.check(app)
    assert report.concepts == ["ham", "spam"] and report.folds == 5
    flagged = [row.input_pk for row in report.mislabeled]
    assert flagged[0] == wrong.pk
    # Only the planted mistakes: the ham text labeled spam of the pair is one too.
    assert set(flagged) <= {wrong.pk, b.pk}
    first = report.mislabeled[0]
    assert first.predicted == ["spam"]
    assert first.set_to == [("spam", "1"), ("ham", "none")]
    assert first.remove == [("ham", "none")]


def test_it_finds_the_planted_near_duplicates(app, planted):
    _, a, b = planted
    report = suspicious.check(app)
    assert [(c.a_pk, c.b_pk, c.concepts) for c in report.conflicts] == [
        (a.pk, b.pk, ["ham", "spam"])
    ]
    assert report.conflicts[0].similarity >= suspicious.DUPLICATE_SIMILARITY


def test_the_page_lists_both(alice_client, app, planted):
    wrong, a, b = planted
    body = alice_client.get(page(app)).content.decode()
    assert f'id="suspect-{wrong.pk}"' in body
    assert "Set to spam" in body and "Remove label" in body
    assert f'id="pair-{a.pk}-{b.pk}"' in body
    assert body.count("Use these labels for both") == 2
    assert "Suspicious labels" in body


def test_one_click_changes_exactly_that_label(alice_client, app, planted):
    wrong, _, _ = planted
    before = labels_of_app(app)
    response = alice_client.post(
        fix_url(wrong),
        {"revision": wrong.revision, "change": ["spam:1", "ham:none"]},
        headers=HX,
    )
    body = response.content.decode()
    assert response.status_code == 200 and "<html" not in body
    assert f'id="suspect-{wrong.pk}"' in body and "Saved" in body
    after = labels_of_app(app)
    assert before - after == {(wrong.pk, "ham", 1)}
    assert after - before == {(wrong.pk, "spam", 1)}
    # Checked again, the fixed label is no longer suspicious.
    assert f'id="suspect-{wrong.pk}"' not in alice_client.get(page(app)).content.decode()


def test_use_these_labels_for_both_copies_one_side(alice_client, app, planted):
    _, a, b = planted
    before = labels_of_app(app)
    response = alice_client.post(
        fix_url(b),
        {"revision": b.revision, "pair": a.pk, "change": ["ham:1", "spam:none"]},
        headers=HX,
    )
    body = response.content.decode()
    assert f'id="pair-{a.pk}-{b.pk}"' in body
    # The rows of the same inputs in the list above are updated too, without their fixes.
    assert f'id="suspect-{b.pk}" hx-target="this" hx-swap="outerHTML" hx-swap-oob="true"' in body
    assert "Set to" not in body
    after = labels_of_app(app)
    assert before - after == {(b.pk, "spam", 1)}
    assert after - before == {(b.pk, "ham", 1)}
    body = alice_client.get(page(app)).content.decode()
    assert f'id="pair-{a.pk}-{b.pk}"' not in body


def test_it_works_without_javascript(alice_client, app, planted):
    wrong, _, _ = planted
    response = alice_client.post(fix_url(wrong), {"revision": wrong.revision, "change": "ham:none"})
    assert response.status_code == 302 and response["Location"] == page(app)
    assert not wrong.annotations.exists()


def test_a_stale_row_changes_nothing(alice_client, app, planted):
    wrong, _, _ = planted
    before = labels_of_app(app)
    response = alice_client.post(
        fix_url(wrong),
        {"revision": wrong.revision + 1, "change": ["spam:1", "ham:none"]},
        headers=HX,
    )
    assert "Changed elsewhere" in response.content.decode()
    assert labels_of_app(app) == before


def test_it_refuses_bad_changes(alice_client, app, planted):
    wrong, _, _ = planted
    before = labels_of_app(app)
    for data in (
        {"revision": wrong.revision},
        {"revision": wrong.revision, "change": "spam:2"},
        {"revision": "x", "change": "spam:1"},
        {"revision": wrong.revision, "change": "spam:1", "pair": "x"},
    ):
        assert alice_client.post(fix_url(wrong), data).status_code == 400, data
    unknown = {"revision": wrong.revision, "change": ["spam:1", "nope:1"]}
    assert alice_client.post(fix_url(wrong), unknown).status_code == 404
    assert labels_of_app(app) == before


def test_it_checks_ownership(client, bob, app, planted):
    wrong, _, _ = planted
    before = labels_of_app(app)
    client.force_login(bob)
    assert client.get(page(app)).status_code == 404
    data = {"revision": wrong.revision, "change": "ham:none"}
    assert client.post(fix_url(wrong), data).status_code == 404
    assert labels_of_app(app) == before


def test_it_says_when_there_are_too_few_labels(alice_client, app, spam, ham, embedder):
    items = [add(app, SPAM_TEXTS[0], spam=1), add(app, HAM_TEXTS[0], ham=1)]
    embedding.embed_inputs([i.pk for i in items])
    body = alice_client.get(page(app)).content.decode()
    assert "Too few labels to cross-validate" in body


def test_it_says_when_there_are_too_many_labels(alice_client, app, planted, monkeypatch):
    monkeypatch.setattr(suspicious, "MAX_LABELED", 10)
    body = alice_client.get(page(app)).content.decode()
    assert "Too many labeled inputs to check at once" in body
    assert "19 inputs are labeled here" in body


def test_it_checks_one_dataset(alice_client, app, planted):
    wrong, a, b = planted
    dataset = Dataset.objects.create(app=app, slug="lectures")
    dataset.inputs.add(a, b, *Input.objects.filter(app=app).exclude(pk=wrong.pk)[:6])
    body = alice_client.get(page(app) + "?dataset=lectures").content.decode()
    assert f'id="suspect-{wrong.pk}"' not in body
    assert f'id="pair-{a.pk}-{b.pk}"' in body


def test_it_says_which_labeled_inputs_wait_for_embedding(alice_client, app, planted):
    add(app, "Lunch at noon?", ham=1)
    body = alice_client.get(page(app)).content.decode()
    assert "1 labeled input is still being embedded" in body


def test_with_an_exclusive_model_the_probabilities_add_up_to_one(alice_client, app, planted):
    wrong, _, _ = planted
    model = TrainableModel.objects.create(app=app, slug="exclusive")
    params = {**default_params(), "concepts_mutually_exclusive": True}
    ModelVersion.objects.create(
        model=model, number=1, status=ModelVersion.Status.TRAINED, params=params
    )
    report = suspicious.check(app)
    assert report.exclusive
    found = next(m for m in report.mislabeled if m.input_pk == wrong.pk)
    assert sum(p for _, p in found.scores) == pytest.approx(1.0)
    assert found.predicted == ["spam"]
    for row in report.mislabeled:
        assert sum(p for _, p in row.scores) == pytest.approx(1.0)
    text = alice_client.get(page(app)).content.decode()
    assert "mutually exclusive as the latest trained model" in text

import numpy as np
import pytest

from portal import embedding, similar
from portal.models import Annotation, App, Concept, Input, text_hash

HX = {"HX-Request": "true"}
SOURCE = "How do I reset my password?"
TEXTS = [
    "I forgot my password, how can I change it?",
    "The password reset link in the email does not work.",
    "What time does the train to Paris leave?",
    "This pizza recipe needs more garlic.",
    "My account is locked after too many login attempts.",
]


def add(app: App, text: str, embed: bool = True) -> Input:
    item = Input.objects.create(app=app, text=text, text_hash=text_hash(text))
    if embed:
        embedding.embed_inputs([item.pk])
    return item


@pytest.fixture
def inputs(app, embedder):
    source = add(app, SOURCE)
    return source, [add(app, text) for text in TEXTS]


def url(item: Input, suffix: str = "") -> str:
    return f"/apps/{item.app.slug}/quality/similar/{item.pk}/{suffix}"


def test_it_lists_the_nearest_texts_in_order(alice_client, inputs, embedder):
    source, others = inputs
    response = alice_client.get(url(source))
    assert response.status_code == 200
    body = response.content.decode()
    shown = [body.index(f'id="similar-{item.pk}"') for item in others]
    # The order a brute-force cosine similarity gives, computed here from the model.
    vectors = embedder.encode([SOURCE, *TEXTS])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    expected = np.argsort(-(vectors[1:] @ vectors[0]))
    assert list(np.argsort(shown)) == list(expected)
    assert {expected[0], expected[1]} == {0, 1}  # the two password texts come first
    assert SOURCE in body
    assert f"{float(vectors[1] @ vectors[0]):.3f}" in body


def test_it_leaves_out_other_apps_inputs(alice_client, inputs, alice, bob):
    source, _ = inputs
    for owner, slug in ((alice, "other-app"), (bob, "bob-app")):
        add(App.objects.create(owner=owner, slug=slug), "I forgot my password and need a new one")
    body = alice_client.get(url(source)).content.decode()
    assert "need a new one" not in body
    assert body.count('class="similar-row"') == len(TEXTS)


def test_it_labels_the_selected_results(alice_client, inputs, spam):
    source, others = inputs
    response = alice_client.post(
        url(source, "label/"),
        {"action": "label", "bulk_concept": "spam", "ids": [others[0].pk, others[1].pk]},
        headers=HX,
    )
    assert response.status_code == 200
    assert "<html" not in response.content.decode()
    assert "Labeled 2 inputs spam" in response.content.decode()
    labeled = Annotation.objects.filter(concept=spam, value=Annotation.POSITIVE)
    assert set(labeled.values_list("input_id", flat=True)) == {others[0].pk, others[1].pk}


def test_it_labels_all_results_as_negative_without_javascript(alice_client, inputs, spam):
    source, others = inputs
    response = alice_client.post(
        url(source, "label/"), {"action": "label-negative", "bulk_concept": "spam", "all": "1"}
    )
    assert response.status_code == 302
    negatives = Annotation.objects.filter(concept=spam, value=Annotation.NEGATIVE)
    assert set(negatives.values_list("input_id", flat=True)) == {item.pk for item in others}
    assert not source.annotations.exists()
    page = alice_client.get(response["Location"]).content.decode()
    assert f"Labeled {len(TEXTS)} inputs spam as negative." in page


def test_it_refuses_bad_requests_and_changes_nothing(alice_client, inputs, spam):
    source, others = inputs
    ids = [others[0].pk]
    bad = alice_client.post(url(source, "label/"), {"action": "delete", "ids": ids})
    assert bad.status_code == 400
    no_concept = alice_client.post(
        url(source, "label/"), {"action": "label", "ids": ids}, headers=HX
    )
    assert "Choose a concept first." in no_concept.content.decode()
    nothing = alice_client.post(
        url(source, "label/"), {"action": "label", "bulk_concept": "spam"}, headers=HX
    )
    assert "Select some results first." in nothing.content.decode()
    assert not Annotation.objects.exists()


def test_it_checks_ownership(client, bob, inputs, spam):
    source, others = inputs
    client.force_login(bob)
    assert client.get(url(source)).status_code == 404
    response = client.post(
        url(source, "label/"), {"action": "label", "bulk_concept": "spam", "ids": [others[0].pk]}
    )
    assert response.status_code == 404
    assert not Annotation.objects.exists()
    # Bob's own app, with Alice's inputs in the body: nothing of hers is labeled.
    bob_app = App.objects.create(owner=bob, slug="bob-app")
    Concept.objects.create(app=bob_app, slug="spam", name="Spam")
    mine = add(bob_app, "Bob's own text")
    client.post(
        url(mine, "label/"), {"action": "label", "bulk_concept": "spam", "ids": [others[0].pk]}
    )
    assert not Annotation.objects.filter(input__app=source.app).exists()


def test_it_says_which_inputs_are_still_being_embedded(alice_client, inputs, app):
    source, _ = inputs
    waiting = add(app, "Where is my parcel?", embed=False)
    body = alice_client.get(url(source)).content.decode()
    assert "1 input is still being embedded" in body
    body = alice_client.get(url(waiting)).content.decode()
    assert "This input is still being embedded" in body
    # Once embedded (by the background job), it is found without any upload in between.
    embedding.embed_inputs([waiting.pk])
    body = alice_client.get(url(source)).content.decode()
    assert "still being embedded" not in body
    assert f'id="similar-{waiting.pk}"' in body


def test_the_index_is_reused_until_the_inputs_change(inputs, app):
    first = similar.index_for(app)
    assert similar.index_for(app) is first
    added = add(app, "Can I change my username?")
    second = similar.index_for(app)
    assert second is not first and second.row_of(added.pk) is not None
    # Extended with the new input: the same as an index built from scratch.
    fresh = similar.build(app)
    assert (second.ids == fresh.ids).all() and np.allclose(second.matrix, fresh.matrix)
    Input.objects.filter(pk=added.pk).delete()
    assert similar.index_for(app).row_of(added.pk) is None


def test_it_keeps_a_bounded_number_of_apps(alice, embedder):
    apps = [App.objects.create(owner=alice, slug=f"app-{n}") for n in range(similar.MAX_APPS + 2)]
    for app in apps:
        add(app, f"Text of {app.slug}")
        similar.index_for(app)
    assert list(similar._indexes) == [app.pk for app in apps[-similar.MAX_APPS :]]


def test_the_explorer_links_each_row_to_find_similar(alice_client, inputs):
    source, _ = inputs
    body = alice_client.get(f"/apps/{source.app.slug}/inputs/").content.decode()
    assert url(source) in body


def test_inputs_embedded_late_take_their_place_in_the_index(app, embedder):
    late = add(app, "Where is my parcel?", embed=False)
    on_time = add(app, "My parcel has not arrived yet.")
    first = similar.index_for(app)
    assert first.pending == [late.pk] and first.row_of(late.pk) is None
    embedding.embed_inputs([late.pk])
    index = similar.index_for(app)
    fresh = similar.build(app)
    assert list(index.ids) == list(fresh.ids) == [late.pk, on_time.pk]
    assert np.allclose(index.matrix, fresh.matrix) and not index.pending
    assert [r.input_pk for r in similar.nearest(index, late.pk)] == [on_time.pk]

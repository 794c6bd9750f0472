"""The inputs explorer's suggestions: the latest model's concepts on unlabeled inputs,
accepted one at a time or all at once above a threshold."""

import re

import pytest

from portal import embedding, explorer
from portal.models import Annotation, App, Input, text_hash

pytestmark = pytest.mark.django_db

URL = "/apps/spam-filter/inputs/"
BULK = URL + "bulk/"
HTMX = {"HX-Request": "true"}

SPAMMY = [
    "You have won a free holiday! Call now to claim your prize.",
    "WINNER! Claim your cash reward today, text WIN to 80086.",
    "Congratulations, you won a brand new phone. Reply YES to collect.",
]
HAMMY = [
    "Shall we meet for coffee after work tomorrow?",
    "Thanks for dinner last night, it was lovely.",
]


def add_inputs(app: App, texts: list[str], embed: bool = True) -> list[Input]:
    """Unlabeled inputs; embedded as the background job embeds them, unless told not to."""
    items = [Input.objects.create(app=app, text=t, text_hash=text_hash(t)) for t in texts]
    if embed:
        embedding.embed_inputs([i.pk for i in items])
    return items


def suggested(html: str, pk: int) -> list[str]:
    """The concepts suggested on the row of input `pk`."""
    row = re.search(rf'<li class="input-row[^"]*" id="input-{pk}".*?</li>', html, re.S).group(0)
    return re.findall(r'data-suggested="([^"]+)"', row)


def labels_of(item: Input) -> dict[str, int]:
    return dict(Annotation.objects.filter(input=item).values_list("concept__slug", "value"))


@pytest.fixture
def owner_client(client, trained_model):
    client.force_login(trained_model.app.owner)
    return client


def test_unlabeled_inputs_show_the_latest_models_suggestions(owner_client, trained_model):
    spammy = add_inputs(trained_model.app, SPAMMY[:1])[0]
    hammy = add_inputs(trained_model.app, HAMMY[:1])[0]
    labeled = Input.objects.filter(annotations__isnull=False).first()

    response = owner_client.get(URL)

    html = response.content.decode()
    assert response.status_code == 200
    assert "Suggestions for unlabeled inputs from model" in html
    assert ">detector</a> v1" in html
    assert suggested(html, spammy.pk) == ["spam"]
    assert suggested(html, hammy.pk) == ["ham"]
    assert suggested(html, labeled.pk) == []  # a labeled input gets no suggestion
    chip = re.search(r'<button class="chip suggested".*?</button>', html, re.S).group(0)
    assert re.search(r'class="chip-value">0\.\d\d<', chip)
    assert "Accept for all 12 matching" in html


def test_the_fragment_shows_suggestions_too(owner_client, trained_model):
    spammy = add_inputs(trained_model.app, SPAMMY[:1])[0]
    response = owner_client.get(URL, {"state": "unlabeled"}, headers=HTMX)
    assert b"<html" not in response.content
    assert suggested(response.content.decode(), spammy.pk) == ["spam"]


def test_an_input_not_embedded_yet_gets_no_suggestion(owner_client, trained_model):
    waiting = add_inputs(trained_model.app, SPAMMY[:1], embed=False)[0]
    response = owner_client.get(URL)
    assert response.status_code == 200
    assert suggested(response.content.decode(), waiting.pk) == []
    # Nothing was embedded for the page.
    assert not embedding.cached(trained_model.app.base_model, [waiting.text_hash])


def test_without_a_trained_model_there_is_nothing_to_suggest(alice_client, app, spam):
    Input.objects.create(app=app, text="Win a prize", text_hash=text_hash("Win a prize"))
    response = alice_client.get(URL)
    html = response.content.decode()
    assert response.status_code == 200
    assert "1 input matches" in html
    assert "suggested" not in html
    assert "Accept suggestions" not in html


def test_concepts_under_the_models_thresholds_are_not_suggested(owner_client, trained_model):
    version = trained_model.versions.get()
    version.params["inference_params"]["concept_thresholds"] = {"spam": 0.999}
    version.save(update_fields=["params"])
    spammy = add_inputs(trained_model.app, SPAMMY[:1])[0]
    response = owner_client.get(URL)
    assert suggested(response.content.decode(), spammy.pk) == []


def test_one_click_accepts_a_suggestion_as_a_label(owner_client, trained_model):
    spammy = add_inputs(trained_model.app, SPAMMY[:1])[0]
    html = owner_client.get(URL).content.decode()
    row = re.search(rf'id="input-{spammy.pk}".*?</li>', html, re.S).group(0)
    form = re.search(r'<form class="chip-form"[^>]*hx-post="([^"]+)">(.*?)</form>', row, re.S)
    fields = dict(re.findall(r'name="(concept|value|revision)" value="([^"]*)"', form.group(2)))
    assert fields == {"concept": "spam", "value": "1", "revision": "0"}

    response = owner_client.post(form.group(1), fields, headers=HTMX)

    assert response.status_code == 200
    assert labels_of(spammy) == {"spam": Annotation.POSITIVE}
    assert 'class="chip positive"' in response.content.decode()
    assert "Saved" in response.content.decode()


def test_a_suggestion_accepted_after_a_change_elsewhere_is_refused(owner_client, trained_model):
    spammy = add_inputs(trained_model.app, SPAMMY[:1])[0]
    Input.objects.filter(pk=spammy.pk).update(revision=1)  # labeled and unlabeled meanwhile
    url = f"{URL}{spammy.pk}/label/"
    response = owner_client.post(
        url, {"concept": "spam", "value": "1", "revision": "0"}, headers=HTMX
    )
    assert "Changed elsewhere" in response.content.decode()
    assert labels_of(spammy) == {}
    assert suggested(response.content.decode(), spammy.pk) == ["spam"]  # still one click away


def test_a_row_whose_last_label_is_removed_shows_suggestions_again(owner_client, trained_model):
    spammy = add_inputs(trained_model.app, SPAMMY[:1])[0]
    url = f"{URL}{spammy.pk}/label/"
    owner_client.post(url, {"concept": "spam", "value": "1", "revision": "0"}, headers=HTMX)

    response = owner_client.post(
        url, {"concept": "spam", "value": "none", "revision": "1", "next": URL}, headers=HTMX
    )

    assert labels_of(spammy) == {}
    assert suggested(response.content.decode(), spammy.pk) == ["spam"]


def test_accept_all_labels_every_matching_input_not_only_the_page(
    owner_client, trained_model, monkeypatch
):
    # Scored a few at a time, as a large filter would be.
    monkeypatch.setattr(explorer, "SUGGEST_BATCH", 4)
    many = [f"{text} (copy {n})" for n in range(28) for text in SPAMMY[:1] + HAMMY[:1]]
    items = add_inputs(trained_model.app, many)
    unembedded = add_inputs(trained_model.app, ["Claim your free prize now!"], embed=False)[0]
    assert "Page 1 of 2" in owner_client.get(URL).content.decode()

    response = owner_client.post(
        BULK,
        {"action": "accept-suggestions", "suggest_threshold": "0.5", "page": "1"},
        headers=HTMX,
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert "Accepted 56 suggestions of 0.5 or more from detector v1: 56 inputs labeled." in html
    assert "1 unlabeled input not embedded yet got no suggestion" in html
    for item in items:
        expected = "spam" if item.text.startswith("You have won") else "ham"
        assert labels_of(item) == {expected: Annotation.POSITIVE}, item.text
    assert labels_of(unembedded) == {}
    assert Input.objects.get(pk=items[0].pk).revision == 1  # other tabs see the change


def test_accept_all_keeps_to_the_filter_and_the_threshold(owner_client, trained_model):
    spammy = add_inputs(trained_model.app, SPAMMY)
    hammy = add_inputs(trained_model.app, HAMMY)
    data = {"action": "accept-suggestions", "suggest_threshold": "0.5", "q": "won"}
    owner_client.post(BULK, data)
    assert [bool(labels_of(i)) for i in spammy] == [True, False, True]  # the texts with "won"
    assert all(labels_of(i) == {} for i in hammy)

    response = owner_client.post(BULK, data | {"q": "", "suggest_threshold": "1"}, follow=True)
    assert "Accepted 0 suggestions of 1 or more" in response.content.decode()
    assert labels_of(spammy[1]) == {}


@pytest.mark.parametrize("threshold", ["", "high", "1.5", "-0.1", "nan"])
def test_a_bad_threshold_labels_nothing(owner_client, trained_model, threshold):
    item = add_inputs(trained_model.app, SPAMMY[:1])[0]
    data = {"action": "accept-suggestions", "suggest_threshold": threshold}
    response = owner_client.post(BULK, data, headers=HTMX)
    assert response.status_code == 200
    assert "the threshold must be a number from 0 to 1" in response.content.decode()
    assert labels_of(item) == {}


def test_accept_all_without_a_model_says_so(alice_client, app, spam):
    item = Input.objects.create(app=app, text="Win a prize", text_hash=text_hash("Win a prize"))
    data = {"action": "accept-suggestions", "suggest_threshold": "0.5"}
    response = alice_client.post(BULK, data, headers=HTMX)
    assert "No trained model to take suggestions from" in response.content.decode()
    assert labels_of(item) == {}


def test_another_users_app_is_not_found(client, bob, trained_model):
    add_inputs(trained_model.app, SPAMMY[:1])
    client.force_login(bob)
    assert client.get(URL).status_code == 404
    data = {"action": "accept-suggestions", "suggest_threshold": "0"}
    assert client.post(BULK, data).status_code == 404
    assert Annotation.objects.count() == 10

import hashlib
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from portal import labels
from portal.models import Annotation, App, Concept, Dataset, Input

pytestmark = pytest.mark.django_db

URL = "/apps/spam-filter/inputs/"
BULK = URL + "bulk/"
HTMX = {"HX-Request": "true"}


@pytest.fixture
def train(app):
    return Dataset.objects.create(app=app, slug="train")


def make_inputs(app, n, prefix="text"):
    """n inputs, the last one newest."""
    start = timezone.now() - timedelta(days=1)
    return Input.objects.bulk_create(
        Input(
            app=app,
            text=f"{prefix} {i}",
            text_hash=hashlib.sha256(f"{prefix} {i}".encode()).hexdigest(),
            created=start + timedelta(seconds=i),
        )
        for i in range(n)
    )


def row_ids(response) -> list[int]:
    return [
        int(pk) for pk in re.findall(r'<li class="input-row[^"]*" id="input-(\d+)"', response.text)
    ]


@pytest.fixture
def labeled(app, spam, ham, train, alice):
    """a: spam, b: not spam, c: ham (in train), d: nothing."""
    a, b, c, d = make_inputs(app, 4)
    labels.set_label(a, spam, 1, 0, alice)
    labels.set_label(b, spam, 0, 0, alice)
    labels.set_label(c, ham, 1, 0, alice)
    train.inputs.add(c)
    return a, b, c, d


# The page


def test_it_shows_the_inputs_page(alice_client, labeled):
    response = alice_client.get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" in html
    assert "Upload inputs" in html
    assert 'id="upload-dialog"' in html
    assert "4 inputs match" in html
    assert 'class="chip positive"' in html
    assert 'class="chip negative"' in html
    assert '<span class="tag" title="In dataset train">train</span>' in html
    active = html.split('class="active"><span class="icon">')[1].split("</a>")[0]
    assert active.startswith('<svg class="icon-svg"')
    assert active.endswith('<span class="label">Inputs</span>')


def test_the_list_fragment_has_no_page_around_it(alice_client, labeled):
    response = alice_client.get(URL, headers=HTMX)
    assert b"<html" not in response.content
    assert b'id="explorer"' in response.content
    assert b"4 inputs match" in response.content
    assert "HX-Request" in response["Vary"]


def test_a_history_restore_gets_the_whole_page(alice_client, labeled):
    headers = HTMX | {"HX-History-Restore-Request": "true"}
    assert b"<html" in alice_client.get(URL, headers=headers).content


def test_it_invites_a_newcomer_to_upload(alice_client, app):
    html = alice_client.get(URL).content.decode()
    assert "No inputs yet" in html
    assert "Upload inputs" in html


def test_it_lists_the_newest_first_fifty_a_page(alice_client, app):
    items = make_inputs(app, 60)
    newest_first = [item.pk for item in reversed(items)]
    first = alice_client.get(URL)
    assert b"60 inputs match" in first.content
    assert row_ids(first) == newest_first[:50]
    assert b"Page 1 of 2" in first.content
    assert b'href="/apps/spam-filter/inputs/?page=2"' in first.content
    second = alice_client.get(URL, {"page": 2})
    assert row_ids(second) == newest_first[50:]


def test_the_pages_keep_the_filter(alice_client, app):
    make_inputs(app, 60, prefix="offer")
    response = alice_client.get(URL, {"q": "offer"})
    assert b'href="/apps/spam-filter/inputs/?q=offer&amp;page=2"' in response.content


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, "abcd"),
        ({"dataset": "train"}, "c"),
        ({"concept": "spam"}, "ab"),
        ({"concept": "spam", "state": "positive"}, "a"),
        ({"concept": "spam", "state": "negative"}, "b"),
        ({"concept": "spam", "state": "unlabeled"}, "cd"),
        ({"state": "unlabeled"}, "d"),
        ({"state": "positive"}, "ac"),
        ({"state": "negative"}, "b"),
        ({"q": "TEXT 2"}, "c"),
        ({"q": "text", "concept": "ham", "dataset": "train"}, "c"),
    ],
)
def test_it_filters(alice_client, labeled, params, expected):
    by_letter = dict(zip("abcd", labeled, strict=True))
    response = alice_client.get(URL, params, headers=HTMX)
    assert sorted(row_ids(response)) == sorted(by_letter[letter].pk for letter in expected)
    n = len(expected)
    assert f"{n} input{'s' if n > 1 else ''} match{'' if n > 1 else 'es'}" in response.text


def test_a_filter_without_matches_says_so(alice_client, labeled):
    response = alice_client.get(URL, {"q": "nothing like this"})
    assert b"No inputs match" in response.content
    assert b"Clear filters" in response.content
    assert b"No inputs yet" not in response.content


def test_an_unknown_filter_concept_is_not_found(alice_client, labeled):
    assert alice_client.get(URL, {"concept": "nope"}).status_code == 404


def test_the_page_takes_a_constant_number_of_queries(
    alice_client, app, spam, ham, train, alice, django_assert_max_num_queries
):
    items = make_inputs(app, 60)
    labels.label_inputs(Input.objects.filter(pk__in=[i.pk for i in items[::2]]), spam, 1, alice)
    labels.label_inputs(Input.objects.filter(pk__in=[i.pk for i in items[::3]]), ham, 0, alice)
    train.inputs.add(*items)
    Dataset.objects.create(app=app, slug="test").inputs.add(*items[:30])
    # session, user, app, count, page, labels, datasets, concepts, dataset list, app menu,
    # the latest trained model (for suggestions)
    with django_assert_max_num_queries(11):
        response = alice_client.get(URL)
    assert len(row_ids(response)) == 50


# Labeling one input


def post_label(client, item, concept, value, revision=None, htmx=True):
    data = {"concept": concept, "value": value, "revision": item.revision}
    if revision is not None:
        data["revision"] = revision
    headers = HTMX if htmx else {}
    return client.post(f"{URL}{item.pk}/label/", data, headers=headers)


def label_of(item, concept):
    return (
        Annotation.objects.filter(input=item, concept=concept)
        .values_list("value", flat=True)
        .first()
    )


def test_a_label_cycles_positive_negative_none(alice_client, app, spam, alice):
    (item,) = make_inputs(app, 1)
    response = post_label(alice_client, item, "spam", "1")
    assert response.status_code == 200
    assert b"<html" not in response.content
    assert b"Saved" in response.content
    assert b'class="chip positive"' in response.content
    assert label_of(item, spam) == 1
    assert Annotation.objects.get(input=item).author == alice

    item.refresh_from_db()
    response = post_label(alice_client, item, "spam", "0")
    assert b'class="chip negative"' in response.content
    assert label_of(item, spam) == 0

    item.refresh_from_db()
    response = post_label(alice_client, item, "spam", "none")
    assert b"chip" not in response.content.replace(b"chip-form", b"")
    assert label_of(item, spam) is None


def test_the_row_carries_the_new_revision(alice_client, app, spam):
    (item,) = make_inputs(app, 1)
    response = post_label(alice_client, item, "spam", "1")
    assert b'name="revision" value="1"' in response.content
    assert b'name="revision" value="0"' not in response.content


def test_a_label_from_a_stale_tab_is_not_applied(alice_client, app, spam, ham, alice):
    (item,) = make_inputs(app, 1)
    post_label(alice_client, item, "ham", "1", revision=0)  # the other tab
    response = post_label(alice_client, item, "spam", "1", revision=0)
    assert response.status_code == 200
    assert "Changed elsewhere since you opened it" in response.text
    assert b"Saved" not in response.content
    assert label_of(item, spam) is None
    assert label_of(item, ham) == 1
    assert b'data-concept="ham"' in response.content
    assert b'name="revision" value="1"' in response.content


def test_labeling_works_without_javascript(alice_client, app, spam):
    (item,) = make_inputs(app, 1)
    data = {"concept": "spam", "value": "1", "revision": 0, "next": URL + "?q=text&page=1"}
    response = alice_client.post(f"{URL}{item.pk}/label/", data)
    assert response.status_code == 302
    assert response["Location"] == f"{URL}?q=text&page=1#input-{item.pk}"
    assert label_of(item, spam) == 1


def test_labeling_never_redirects_elsewhere(alice_client, app, spam):
    (item,) = make_inputs(app, 1)
    data = {"concept": "spam", "value": "1", "revision": 0, "next": "https://evil.example/"}
    response = alice_client.post(f"{URL}{item.pk}/label/", data)
    assert response["Location"] == f"{URL}#input-{item.pk}"


def test_a_concept_of_another_app_is_never_used(alice_client, app, bob):
    (item,) = make_inputs(app, 1)
    theirs = Concept.objects.create(app=App.objects.create(owner=bob, slug="b"), slug="spam")
    assert post_label(alice_client, item, "spam", "0").status_code == 404
    assert not Annotation.objects.exists()
    post_label(alice_client, item, "spam", "1")  # "+ concept": a new concept of her app
    assert Annotation.objects.get().concept.app == app
    assert not theirs.annotations.exists()


def test_a_new_concept_typed_in_a_row_is_created_and_applied(alice_client, app, spam):
    (item,) = make_inputs(app, 1)
    response = post_label(alice_client, item, "promo", "1")
    assert response.status_code == 200
    assert b"<html" not in response.content
    promo = Concept.objects.get(app=app, slug="promo")
    assert promo.name == "promo"
    assert label_of(item, promo) == 1
    assert b'data-concept="promo"' in response.content
    item.refresh_from_db()
    post_label(alice_client, item, "SPAM", "1")  # IDs are one whatever their case
    assert label_of(item, spam) == 1
    assert Concept.objects.filter(app=app).count() == 2


@pytest.mark.parametrize("typed", ["two words", "-dash", "x" * 65, "éclair!"])
def test_a_concept_id_the_upload_window_refuses_is_refused_in_the_row(alice_client, app, typed):
    (item,) = make_inputs(app, 1)
    response = post_label(alice_client, item, typed, "1")
    assert response.status_code == 200
    assert b"<html" not in response.content
    alert = response.text.split('role="alert">')[1].split("</p>")[0]
    assert "ID" in alert or "characters" in alert
    assert b"Saved" not in response.content
    assert not Concept.objects.exists()
    assert not Annotation.objects.exists()
    response = post_label(alice_client, item, typed, "1", htmx=False)
    assert response.status_code == 302
    assert not Concept.objects.exists()


@pytest.mark.parametrize(("value", "revision"), [("2", 0), ("yes", 0), ("1", "x"), ("1", "")])
def test_it_rejects_bad_label_values(alice_client, app, spam, value, revision):
    (item,) = make_inputs(app, 1)
    assert post_label(alice_client, item, "spam", value, revision=revision).status_code == 400
    assert not Annotation.objects.exists()


# Bulk actions


def bulk(client, action, ids=(), htmx=True, **data):
    data = {"action": action, "ids": [str(pk) for pk in ids], **data}
    return client.post(BULK, data, headers=HTMX if htmx else {})


def test_it_labels_the_selected_inputs(alice_client, app, spam):
    items = make_inputs(app, 3)
    response = bulk(alice_client, "label", [items[0].pk, items[1].pk], bulk_concept="spam")
    assert response.status_code == 200
    assert b"<html" not in response.content
    assert "Added spam to 2 inputs" in response.text
    assert [label_of(i, spam) for i in items] == [1, 1, None]


def test_it_labels_the_selected_inputs_as_negative(alice_client, app, spam):
    items = make_inputs(app, 2)
    response = bulk(alice_client, "label-negative", [items[0].pk], bulk_concept="spam")
    assert "Added spam as negative to 1 input" in response.text
    assert [label_of(i, spam) for i in items] == [0, None]


def test_it_removes_a_label_from_the_selected_inputs(alice_client, labeled, spam):
    a, b, c, _d = labeled
    response = bulk(alice_client, "unlabel", [a.pk, b.pk, c.pk], bulk_concept="spam")
    assert "Removed spam from 2 inputs" in response.text
    assert not Annotation.objects.filter(concept=spam).exists()


def test_it_adds_to_and_removes_from_a_dataset(alice_client, labeled, train):
    a, b, c, _d = labeled
    response = bulk(alice_client, "add-to-dataset", [a.pk, b.pk], bulk_dataset="train")
    assert "Added 2 inputs to train" in response.text
    assert set(train.inputs.all()) == {a, b, c}
    response = bulk(alice_client, "remove-from-dataset", [a.pk, c.pk], bulk_dataset="train")
    assert "Removed 2 inputs from train" in response.text
    assert list(train.inputs.all()) == [b]


def test_it_deletes_the_selected_inputs(alice_client, labeled):
    a, b, c, d = labeled
    response = bulk(alice_client, "delete", [a.pk, d.pk])
    assert "Deleted 2 inputs" in response.text
    assert set(Input.objects.all()) == {b, c}
    assert "2 inputs match" in response.text


def test_it_acts_on_everything_matching_the_filter(alice_client, app, spam, ham, alice):
    offers = make_inputs(app, 120, prefix="offer")
    others = make_inputs(app, 5, prefix="hello")
    response = bulk(alice_client, "label", all="1", q="offer", bulk_concept="spam")
    assert "Added spam to 120 inputs" in response.text
    assert Annotation.objects.filter(concept=spam, input__in=offers).count() == 120
    assert not Annotation.objects.filter(input__in=others).exists()
    # The list comes back with the same filter.
    assert "120 inputs match" in response.text


def test_acting_on_the_filter_ignores_the_ids(alice_client, labeled, spam):
    a, b, _c, _d = labeled
    response = bulk(alice_client, "delete", [a.pk], all="1", concept="spam", state="negative")
    assert "Deleted 1 input" in response.text
    assert not Input.objects.filter(pk=b.pk).exists()
    assert Input.objects.filter(pk=a.pk).exists()


def test_all_matching_unlabeled_inputs_can_be_labeled(alice_client, labeled, spam):
    _a, _b, _c, _d = labeled
    bulk(alice_client, "label", all="1", concept="spam", state="unlabeled", bulk_concept="spam")
    assert [label_of(i, spam) for i in labeled] == [1, 0, 1, 1]


def test_bulk_actions_bump_the_revision(alice_client, labeled):
    a, _b, _c, d = labeled
    bulk(alice_client, "label", [a.pk, d.pk], bulk_concept="ham")
    a.refresh_from_db()
    d.refresh_from_db()
    assert (a.revision, d.revision) == (2, 1)


def test_it_ignores_inputs_of_other_users(alice_client, app, spam, bob):
    mine = make_inputs(app, 1)[0]
    bobs = make_inputs(App.objects.create(owner=bob, slug="spam-filter"), 2)
    ids = [mine.pk, *(i.pk for i in bobs)]
    response = bulk(alice_client, "label", ids, bulk_concept="spam")
    assert "Added spam to 1 input" in response.text
    bulk(alice_client, "delete", ids)
    assert Input.objects.filter(app__owner=bob).count() == 2
    assert not Annotation.objects.filter(input__in=bobs).exists()


def test_it_asks_for_a_selection(alice_client, labeled):
    response = bulk(alice_client, "delete")
    assert "Select some inputs first." in response.text
    assert Input.objects.count() == 4


def test_it_asks_for_a_concept(alice_client, labeled):
    a = labeled[0]
    assert "Choose a concept first." in bulk(alice_client, "label", [a.pk]).text
    assert "Choose a dataset first." in bulk(alice_client, "add-to-dataset", [a.pk]).text


def test_it_rejects_unknown_actions(alice_client, labeled):
    assert bulk(alice_client, "explode", [labeled[0].pk]).status_code == 400


def test_bulk_actions_work_without_javascript(alice_client, labeled, spam):
    a = labeled[3]
    next_url = URL + "?state=unlabeled"
    response = bulk(alice_client, "label", [a.pk], htmx=False, bulk_concept="spam", next=next_url)
    assert response.status_code == 302
    assert response["Location"] == next_url
    assert label_of(a, spam) == 1
    assert b"Added spam to 1 input" in alice_client.get(next_url).content


# Ownership


@pytest.fixture
def target(labeled):
    return labeled[3]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", ""),
        ("get", "?concept=spam"),
        ("post", "bulk/"),
        ("post", "{pk}/label/"),
    ],
)
def test_it_checks_ownership(client, charlie, target, spam, method, path):
    client.force_login(charlie)
    data = {
        "action": "delete",
        "ids": [target.pk],
        "all": "1",
        "concept": "spam",
        "value": "1",
        "revision": 0,
    }
    response = getattr(client, method)(URL + path.format(pk=target.pk), data)
    assert response.status_code == 404
    assert Input.objects.count() == 4
    assert label_of(target, spam) is None


def test_an_input_of_another_app_is_not_found(alice_client, labeled, alice, spam):
    other = make_inputs(App.objects.create(owner=alice, slug="other"), 1)[0]
    response = post_label(alice_client, other, "spam", "1")
    assert response.status_code == 404
    assert not Annotation.objects.filter(input=other).exists()


@pytest.mark.parametrize(("method", "path"), [("get", ""), ("post", "bulk/"), ("post", "1/label/")])
def test_anonymous_users_are_sent_to_sign_in(client, labeled, method, path):
    response = getattr(client, method)(URL + path, {"action": "delete", "all": "1"})
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]
    assert Input.objects.count() == 4

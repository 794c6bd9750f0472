import hashlib
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from portal.models import ApiToken

pytestmark = pytest.mark.django_db

TOKENS = "/account/api-tokens/"
PREDICT = "/api/v1/apps/spam-filter/models/detector/predict"


def revoke_url(token: ApiToken) -> str:
    return f"{TOKENS}{token.pk}/revoke/"


def predict(client, key: str):
    return client.post(
        PREDICT,
        {"texts": ["hello"]},
        content_type="application/json",
        headers={"Authorization": f"Token {key}"},
    )


def test_it_lists_the_users_tokens(alice_client, alice, bob):
    ApiToken.issue(alice, "laptop")
    ApiToken.issue(bob, "bobs-secret-job")
    page = alice_client.get(TOKENS)
    assert page.status_code == 200
    assert b"laptop" in page.content
    assert b"bobs-secret-job" not in page.content
    assert b"Never" in page.content  # last used


def test_the_user_menu_links_to_it(alice_client):
    assert f'href="{TOKENS}"'.encode() in alice_client.get("/").content


def test_it_needs_a_signed_in_user(client):
    response = client.get(TOKENS)
    assert response.status_code == 302
    assert response.url.startswith("/accounts/login/")


def test_create_shows_the_key_once_and_stores_only_its_hash(alice_client, alice):
    posted = alice_client.post(TOKENS, {"name": "nightly job"})
    assert posted.status_code == 302
    assert posted.url == TOKENS
    response = alice_client.get(TOKENS)
    assert "no-store" in response.headers["Cache-Control"]
    token = ApiToken.objects.get(user=alice)
    key = response.context["key"]
    assert key.encode() in response.content
    assert f'curl -H "Authorization: Token {key}" http://testserver/api/v1/apps'.encode() in (
        response.content
    )
    assert token.name == "nightly job"
    assert token.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert key not in (token.key_hash, token.hint, token.name)
    assert key.startswith(token.hint)
    again = alice_client.get(TOKENS)  # a reload
    assert key.encode() not in again.content
    assert token.hint.encode() in again.content
    assert ApiToken.objects.count() == 1
    assert key not in str(dict(alice_client.session))


def test_a_token_name_is_one_of_a_kind_while_active(alice_client, alice):
    alice_client.post(TOKENS, {"name": "laptop"})
    response = alice_client.post(TOKENS, {"name": " Laptop "})
    assert response.status_code == 200
    assert "You already have a token called “Laptop”" in response.content.decode()
    assert ApiToken.objects.count() == 1
    token = ApiToken.objects.get()
    alice_client.post(revoke_url(token))
    assert alice_client.post(TOKENS, {"name": "laptop"}).status_code == 302
    assert ApiToken.objects.count() == 2


def test_the_form_says_name_without_a_colon(alice_client):
    page = alice_client.get(TOKENS).content.decode()
    assert '<label for="id_name">Name</label>' in page


def test_a_name_is_required(alice_client):
    response = alice_client.post(TOKENS, {"name": "  "})
    assert response.status_code == 200
    assert b"This field is required" in response.content
    assert not ApiToken.objects.exists()


def test_the_key_works_on_the_api_until_revoked(alice_client, alice, spam_model):
    _, other_key = ApiToken.issue(alice, "other")
    alice_client.post(TOKENS, {"name": "script"})
    key = alice_client.get(TOKENS).context["key"]
    token = ApiToken.objects.get(name="script")
    client = Client()  # no session: the key alone authenticates, as alice
    answer = predict(client, key)
    assert answer.status_code == 400, answer.content
    assert "no trained version" in answer.json()["error"]  # alice's model was found
    token.refresh_from_db()
    assert token.last_used is not None

    alice_client.get(revoke_url(token))
    assert predict(client, key).status_code == 400  # asking doesn't revoke
    response = alice_client.post(revoke_url(token))
    assert response.status_code == 302
    answer = predict(client, key)
    assert answer.status_code == 401
    assert "authentication required" in answer.json()["error"]
    assert predict(client, other_key).status_code == 400  # only the one asked for
    row = alice_client.get(TOKENS).content.decode().split(f'id="token-{token.pk}"')[1]
    assert "Revoked" in row.split("</tr>")[0]


def test_a_wrong_key_is_refused(client, spam_model):
    assert predict(client, "tcp_not-a-real-key").status_code == 401


def test_revoking_asks_first(alice_client, alice):
    token, _ = ApiToken.issue(alice, "laptop")
    page = alice_client.get(revoke_url(token))
    assert b"Revoke token <b>laptop</b>" in page.content
    assert b'<button class="danger" type="submit">Revoke token</button>' in page.content
    token.refresh_from_db()
    assert token.revoked is None


def test_it_checks_ownership(client, alice, bob):
    token, _ = ApiToken.issue(alice, "alices-token")
    client.force_login(bob)
    assert b"alices-token" not in client.get(TOKENS).content
    assert client.get(revoke_url(token)).status_code == 404
    assert client.post(revoke_url(token)).status_code == 404
    token.refresh_from_db()
    assert token.revoked is None


def test_the_command_prints_only_the_key(alice):
    out, err = StringIO(), StringIO()
    call_command("create_api_token", "alice", "--name", "ci", stdout=out, stderr=err)
    key = out.getvalue().strip()
    assert out.getvalue() == key + "\n"
    token = ApiToken.objects.get(user=alice)
    assert token.name == "ci"
    assert token.key_hash == ApiToken.hash(key)
    assert "shown only once" in err.getvalue()


def test_the_command_key_works(client, alice, spam_model):
    out = StringIO()
    call_command("create_api_token", "alice", stdout=out, stderr=StringIO())
    assert ApiToken.objects.get().name == "command line"
    assert predict(client, out.getvalue().strip()).status_code == 400


def test_the_command_refuses_an_unknown_user(alice):
    with pytest.raises(CommandError, match="No user called “mallory”"):
        call_command("create_api_token", "mallory", stdout=StringIO(), stderr=StringIO())
    assert not ApiToken.objects.exists()

"""Password and API token guessing is throttled: sign-in locks out, the API answers 429."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.test import Client

from portal.models import ApiToken
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"
APPS = "/api/v1/apps"


def sign_in(client: Client, username: str, password: str, address: str = "10.0.0.1"):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=address)


def fail(client: Client, times: int, username: str = "alice", address: str = "10.0.0.1"):
    return [sign_in(client, username, "wrong", address) for _ in range(times)][-1]


def is_signed_in(client: Client) -> bool:
    return client.get("/").status_code == 200


def test_five_wrong_passwords_lock_the_username_out(client, alice, settings):
    assert settings.AXES_FAILURE_LIMIT == 5
    assert fail(client, 4).status_code == 200  # still the form, with its error
    locked = fail(client, 1)
    assert locked.status_code == 429
    text = locked.content.decode()
    assert "Too many failed sign-in attempts" in text
    assert "locked for 15 minutes" in text
    assert 'name="password"' in text  # still the sign-in page

    # Even the right password is refused while locked out.
    response = sign_in(client, "alice", PASSWORD)
    assert response.status_code == 429
    assert not is_signed_in(client)


def test_the_lockout_is_per_username_and_address(client, alice, bob):
    fail(client, 5)
    assert sign_in(client, "bob", PASSWORD).status_code == 302
    assert is_signed_in(client)
    other = Client()
    assert sign_in(other, "alice", PASSWORD, address="10.0.0.2").status_code == 302
    assert is_signed_in(other)


def test_a_successful_sign_in_clears_the_count(client, alice):
    fail(client, 4)
    assert sign_in(client, "alice", PASSWORD).status_code == 302
    client.post("/accounts/logout/")
    assert fail(client, 4).status_code == 200
    assert sign_in(client, "alice", PASSWORD).status_code == 302


def test_the_lockout_ends_after_the_cool_off(client, alice):
    fail(client, 5)
    assert sign_in(client, "alice", PASSWORD).status_code == 429
    attempt = AccessAttempt.objects.get(username="alice")
    attempt.attempt_time -= timedelta(minutes=16)
    attempt.save(update_fields=["attempt_time"])
    assert sign_in(client, "alice", PASSWORD).status_code == 302
    assert is_signed_in(client)


def test_unknown_usernames_are_locked_out_too(client):
    assert fail(client, 5, username="nobody").status_code == 429


def test_the_admin_sign_in_is_throttled(client, django_user_model):
    django_user_model.objects.create_superuser("root", password=PASSWORD)
    for _ in range(5):
        response = client.post(
            "/admin/login/", {"username": "root", "password": "wrong"}, REMOTE_ADDR="10.0.0.1"
        )
    assert response.status_code == 429
    response = client.post(
        "/admin/login/", {"username": "root", "password": PASSWORD}, REMOTE_ADDR="10.0.0.1"
    )
    assert response.status_code == 429


# API tokens


def get_apps(client: Client, header: str | None, address: str = "10.0.0.9"):
    headers = {} if header is None else {"HTTP_AUTHORIZATION": header}
    return client.get(APPS, REMOTE_ADDR=address, **headers)


def test_wrong_tokens_get_429_after_ten(client, alice, settings):
    assert settings.PORTAL_API_TOKEN_FAILURE_LIMIT == 10
    key = ApiToken.issue(alice, "laptop")[1]
    for i in range(10):
        response = get_apps(client, f"Token guess-{i}")
        assert response.status_code == 401
    response = get_apps(client, "Token guess-10")
    assert response.status_code == 429
    assert "too many requests with a wrong token" in response.json()["error"]
    assert response["Retry-After"] == "900"
    # A right guess is no longer told apart from a wrong one.
    assert get_apps(client, f"Token {key}").status_code == 429
    # Other addresses, and requests without a token, are unaffected.
    assert get_apps(client, f"Token {key}", address="10.0.0.10").status_code == 200
    assert get_apps(client, None).status_code == 401


def test_right_tokens_are_not_counted(client, alice):
    key = ApiToken.issue(alice, "laptop")[1]
    for _ in range(30):
        assert get_apps(client, f"Token {key}").status_code == 200


def test_a_throttled_address_can_still_use_its_session(client, alice):
    for i in range(11):
        get_apps(client, f"Token guess-{i}")
    client.force_login(alice)
    assert get_apps(client, None).status_code == 200

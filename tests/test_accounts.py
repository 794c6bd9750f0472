import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def test_pages_require_sign_in(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_login_page_renders(client):
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    assert b"Sign in" in response.content


def test_it_signs_in(client, alice):
    response = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert b"My apps" in client.get("/").content


def test_it_rejects_a_wrong_password(client, alice):
    response = client.post("/accounts/login/", {"username": "alice", "password": "nope"})
    assert response.status_code == 200
    assert b"Please enter a correct username and password" in response.content


def test_it_logs_out(alice_client):
    response = alice_client.post("/accounts/logout/")
    assert response.status_code == 302
    assert alice_client.get("/").status_code == 302


def test_signup_creates_a_user_and_signs_in(client):
    password = "a-long-and-unusual-passphrase"
    response = client.post(
        "/accounts/signup/", {"username": "dora", "password1": password, "password2": password}
    )
    assert response.status_code == 302
    assert get_user_model().objects.filter(username="dora").exists()
    assert client.get("/").status_code == 200


def test_signup_can_be_switched_off(client, settings):
    settings.SIGNUP_ENABLED = False
    assert client.get("/accounts/signup/").status_code == 404
    assert b"Create an account" not in client.get("/accounts/login/").content


def test_first_user_is_created_once(capsys, monkeypatch):
    monkeypatch.delenv("DJANGO_SUPERUSER_PASSWORD", raising=False)
    monkeypatch.delenv("DJANGO_SUPERUSER_USERNAME", raising=False)
    call_command("first_user")
    out = capsys.readouterr().out
    assert "username: admin" in out
    password = out.split("password: ")[1].split()[0]
    assert get_user_model().objects.get(username="admin").check_password(password)
    call_command("first_user")
    assert capsys.readouterr().out == ""


def test_first_user_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "operator")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", PASSWORD)
    call_command("first_user")
    assert get_user_model().objects.get(username="operator").check_password(PASSWORD)


def test_a_forgotten_password_is_reset_on_the_server(client):
    login = client.get("/accounts/login/").content.decode()
    assert 'href="/accounts/password_reset/"' in login
    response = client.get("/accounts/password_reset/")
    assert response.status_code == 200
    assert "manage.py changepassword" in response.content.decode()
    # No email is ever sent, so there are no reset links to follow.
    assert client.post("/accounts/password_reset/", {"email": "a@example.com"}).status_code == 405
    assert client.get("/accounts/reset/MQ/set-password/").status_code == 404

"""API authentication: a token (`Authorization: Token <key>`) or the browser's session."""

from datetime import timedelta

from axes.helpers import get_client_ip_address
from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.cache import cache
from django.http import HttpRequest
from django.utils import timezone
from ninja.errors import Throttled
from ninja.security import APIKeyHeader
from ninja.security import SessionAuth as NinjaSessionAuth

from portal.models import ApiToken

# last_used is written at most this often per token, not on every request.
LAST_USED_PRECISION = timedelta(minutes=1)


def failures_key(request: HttpRequest) -> str:
    return f"api-token-failures:{get_client_ip_address(request)}"


def check_not_throttled(request: HttpRequest) -> None:
    """Refuse token requests from an address that sent too many wrong tokens lately."""
    if cache.get(failures_key(request), 0) >= settings.PORTAL_API_TOKEN_FAILURE_LIMIT:
        raise Throttled(settings.PORTAL_API_TOKEN_COOLOFF_SECONDS)


def record_failure(request: HttpRequest) -> None:
    """Count a wrong token; the count expires a cool-off after the first failure."""
    key = failures_key(request)
    timeout = settings.PORTAL_API_TOKEN_COOLOFF_SECONDS
    if not cache.add(key, 1, timeout):
        try:
            cache.incr(key)
        except ValueError:  # expired between add() and incr()
            cache.add(key, 1, timeout)


class TokenAuth(APIKeyHeader):
    """`Authorization: Token <key>`: the key's owner, unless the token was revoked.

    An address that sends too many wrong tokens gets 429 for a while, so keys can't be
    guessed at speed.
    """

    param_name = "Authorization"
    openapi_description = "Authorization: Token <key> (your name at the top right → API tokens)"

    def authenticate(self, request: HttpRequest, key: str | None) -> AbstractBaseUser | None:
        scheme, _, value = (key or "").partition(" ")
        if scheme.lower() != "token" or not value.strip():
            return None
        check_not_throttled(request)
        token = (
            ApiToken.objects.select_related("user")
            .filter(key_hash=ApiToken.hash(value.strip()), revoked__isnull=True)
            .first()
        )
        if token is None or not token.user.is_active:
            record_failure(request)
            return None
        now = timezone.now()
        if token.last_used is None or now - token.last_used > LAST_USED_PRECISION:
            ApiToken.objects.filter(pk=token.pk).update(last_used=now)
        request.user = token.user
        return token.user


class SessionAuth(NinjaSessionAuth):
    """A signed-in browser session, for same-origin calls (with Django's CSRF token).

    A request without a session cookie is not a session call: it gets the 401 that says
    what to send, not a CSRF failure.
    """

    def __call__(self, request: HttpRequest) -> AbstractBaseUser | None:
        if settings.SESSION_COOKIE_NAME not in request.COOKIES:
            return None
        return super().__call__(request)

"""API authentication: a token (`Authorization: Token <key>`) or the browser's session."""

from datetime import timedelta

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.http import HttpRequest
from django.utils import timezone
from ninja.security import APIKeyHeader
from ninja.security import SessionAuth as NinjaSessionAuth

from portal.models import ApiToken

# last_used is written at most this often per token, not on every request.
LAST_USED_PRECISION = timedelta(minutes=1)


class TokenAuth(APIKeyHeader):
    """`Authorization: Token <key>`: the key's owner, unless the token was revoked."""

    param_name = "Authorization"
    openapi_description = "Authorization: Token <key> (Settings → API tokens)"

    def authenticate(self, request: HttpRequest, key: str | None) -> AbstractBaseUser | None:
        scheme, _, value = (key or "").partition(" ")
        if scheme.lower() != "token" or not value.strip():
            return None
        token = (
            ApiToken.objects.select_related("user")
            .filter(key_hash=ApiToken.hash(value.strip()), revoked__isnull=True)
            .first()
        )
        if token is None or not token.user.is_active:
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

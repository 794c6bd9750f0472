"""Every view fetches objects through these helpers: a user sees only their own."""

from django.http import HttpRequest
from django.shortcuts import get_object_or_404

from portal.models import App


def get_app(request: HttpRequest, app_id: str) -> App:
    return get_object_or_404(App, owner=request.user, slug=app_id)

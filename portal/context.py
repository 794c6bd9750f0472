from django.conf import settings
from django.http import HttpRequest

from portal.models import App


def shell(request: HttpRequest) -> dict:
    """What the shell around every page needs: the app switcher and the sign-up link."""
    context: dict = {"signup_enabled": settings.SIGNUP_ENABLED}
    # The 400 page for a bad Host header is rendered before authentication has run.
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        context["my_apps"] = App.objects.filter(owner=user).only("slug")
    return context

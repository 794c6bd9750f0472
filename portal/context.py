from django.conf import settings
from django.http import HttpRequest

from portal.models import App


def shell(request: HttpRequest) -> dict:
    """What the shell around every page needs: the app switcher and the sign-up link."""
    context: dict = {"signup_enabled": settings.SIGNUP_ENABLED}
    if request.user.is_authenticated:
        context["my_apps"] = App.objects.filter(owner=request.user).only("slug")
    return context

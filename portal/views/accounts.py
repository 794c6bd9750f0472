from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from portal.forms import SignupForm


@login_not_required
def signup(request: HttpRequest) -> HttpResponse:
    if not settings.SIGNUP_ENABLED:
        raise Http404("Sign-up is switched off on this server.")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("portal:home")
    return render(request, "registration/signup.html", {"form": form})


@login_not_required
@require_GET
def password_reset(request: HttpRequest) -> HttpResponse:
    """The portal sends no email: a forgotten password is reset by whoever runs the server."""
    return render(request, "registration/password_reset.html")

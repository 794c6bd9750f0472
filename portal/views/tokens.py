"""The user menu → API tokens: a user's keys for the REST API (`Authorization: Token <key>`)."""

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache

from portal.models import ApiToken

NEW_KEY = "portal_new_token"  # session key: the key just issued, until it is shown once


class TokenForm(forms.ModelForm):
    class Meta:
        model = ApiToken
        fields = ["name"]
        labels = {"name": "Name"}
        help_texts = {"name": "What the token is for, e.g. “laptop” or “nightly job”."}

    def __init__(self, *args, user, **kwargs) -> None:
        super().__init__(*args, label_suffix="", **kwargs)
        self.user = user

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        active = ApiToken.objects.filter(user=self.user, revoked__isnull=True)
        if active.filter(name__iexact=name).exists():
            raise forms.ValidationError(
                f"You already have a token called “{name}”: choose another name, or revoke "
                "that one first."
            )
        return name


def _get_token_for_user(request: HttpRequest, token_id: int) -> ApiToken:
    return get_object_or_404(ApiToken, user=request.user, pk=token_id)


def _page(request: HttpRequest, **context) -> HttpResponse:
    context.setdefault("form", TokenForm(user=request.user))
    context["tokens"] = ApiToken.objects.filter(user=request.user)
    context["site_url"] = request.build_absolute_uri("/").rstrip("/")
    context["api_url"] = request.build_absolute_uri(reverse("api:openapi-json")).rsplit("/", 1)[0]
    return render(request, "portal/api_tokens.html", context)


@never_cache
def api_tokens(request: HttpRequest) -> HttpResponse:
    """The list; a POST creates a token and redirects to the list, which shows its key once.

    The key is never stored with the token: it waits in the session for the one GET that
    shows it, so that a reload neither shows it again nor creates another token.
    """
    form = TokenForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        token, key = ApiToken.issue(request.user, form.cleaned_data["name"])
        request.session[NEW_KEY] = {"id": token.pk, "key": key}
        return redirect("portal:api-tokens")
    new = request.session.pop(NEW_KEY, None)
    if request.method == "GET" and new:
        created = ApiToken.objects.filter(user=request.user, pk=new["id"]).first()
        if created is not None:
            return _page(request, created=created, key=new["key"])
    return _page(request, form=form)


def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    """GET asks for confirmation; only a POST revokes."""
    token = _get_token_for_user(request, token_id)
    if request.method == "POST":
        ApiToken.objects.filter(pk=token.pk, revoked__isnull=True).update(revoked=timezone.now())
        messages.success(request, f"Token “{token.name}” revoked: its key no longer works.")
        return redirect("portal:api-tokens")
    return _page(request, revoking=token)


urlpatterns = [
    path("", api_tokens, name="api-tokens"),
    path("<int:token_id>/revoke/", token_revoke, name="api-token-revoke"),
]

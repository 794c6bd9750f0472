"""Shared pieces of the API's request and response schemas."""

from typing import Any

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS
from django.db import IntegrityError, transaction
from ninja import Schema
from ninja.errors import HttpError
from pydantic import ConfigDict


class Forbid(Schema):
    """A request body that rejects fields it doesn't know (a typo is an error, not a no-op)."""

    model_config = ConfigDict(extra="forbid")


def saved(form: forms.ModelForm, duplicate: str) -> Any:
    """The form's new object, or a 400 naming each refused field as the API calls it."""
    if not form.is_valid():
        parts = []
        for field, messages in form.errors.items():
            name = "id" if field == "slug" else field
            parts += [m if field == NON_FIELD_ERRORS else f"{name}: {m}" for m in messages]
        raise HttpError(400, "; ".join(parts))
    try:
        with transaction.atomic():
            return form.save()
    except IntegrityError:  # made by another request since the form checked
        raise HttpError(400, f"id: {duplicate}") from None

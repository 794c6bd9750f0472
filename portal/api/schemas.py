"""Shared pieces of the API's request and response schemas."""

from ninja import Schema
from pydantic import ConfigDict


class Forbid(Schema):
    """A request body that rejects fields it doesn't know (a typo is an error, not a no-op)."""

    model_config = ConfigDict(extra="forbid")

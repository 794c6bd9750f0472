"""Inputs routes of the REST API."""

from ninja import Router

router = Router(tags=["Inputs"])

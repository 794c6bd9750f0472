"""The API against generated requests: a bounded, repeatable schemathesis run finds no 5xx.

Requests go through the whole Django stack in-process (WSGI), as alice with a real
token, over data she owns (a trained model), with Redis behind the queue.
"""

from collections.abc import Iterator

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from openapi_spec_validator import validate
from schemathesis.checks import not_a_server_error

import portal.urls  # noqa: F401  (registers the API's routes)
from portal.api import api
from portal.models import ApiToken

EXAMPLES = 15  # per operation; the run is derandomized, so it is the same every time


def test_the_schema_is_valid_openapi() -> None:
    validate(schema.raw_schema)


schema = schemathesis.openapi.from_dict(api.get_openapi_schema(path_prefix="/api/v1"))
schema.app = get_wsgi_application()


@pytest.fixture
def in_process(trained_model) -> Iterator[None]:
    """Requests through the WSGI app, which, as with Django's test client, must not close
    the connection that holds the test's transaction."""
    for signal in (signals.request_started, signals.request_finished):
        signal.disconnect(close_old_connections)
    try:
        yield
    finally:
        for signal in (signals.request_started, signals.request_finished):
            signal.connect(close_old_connections)


@pytest.fixture
def token(alice) -> str:
    return ApiToken.issue(alice, "fuzz")[1]


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_request_makes_the_server_fail(case, token, in_process) -> None:
    case.call_and_validate(headers={"Authorization": f"Token {token}"}, checks=[not_a_server_error])

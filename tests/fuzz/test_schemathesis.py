"""Schemathesis over the OpenAPI schema: generated requests, authenticated, in process.

Bounded: a few examples per operation. Checks: no 5xx, and responses that conform to
the schema (status codes, content types and bodies)."""

import pytest
from django.contrib.auth.models import Permission
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token

pytestmark = [pytest.mark.heavy, pytest.mark.django_db]
schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is in the dev dependency group")

from django.test import override_settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from project.wsgi import application  # noqa: E402

# Loaded at collection (no database yet): the schema opened and unthrottled for that call.
OPEN = {"SCHEMA_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"], "THROTTLE_CLASSES": []}
with override_settings(CRMSYNC={"API": OPEN}):
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)


@pytest.fixture
def keep_test_connection():
    """In-process WSGI calls would close the test's database connection after each request
    (Django's test client disconnects the same handlers)."""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def token(django_user_model, settings, keep_test_connection):
    settings.CRMSYNC = {"CONNECTIONS": {"crm": {"ADAPTER": "fake"}}, "API": {"THROTTLE_CLASSES": []}}
    user = django_user_model.objects.create_user("fuzzer")
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="crmsync"))
    return Token.objects.create(user=user).key


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_never_errors_and_conforms_to_its_schema(case, token):
    case.call_and_validate(
        headers={"Authorization": f"Token {token}"},
        checks=[
            not_a_server_error,
            response_schema_conformance,
            status_code_conformance,
            content_type_conformance,
        ],
    )

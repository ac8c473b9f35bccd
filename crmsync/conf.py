"""App settings: ``settings.CRMSYNC`` with defaults, read on every access."""

from typing import Any

from django.conf import settings

# The REST API's own classes: its views use these, never REST_FRAMEWORK's defaults, so
# they behave the same under any host settings (DESIGN §11). Dotted paths; a host
# overrides any key through CRMSYNC["API"].
API_DEFAULTS: dict[str, Any] = {
    # Token first: a call without credentials answers 401 with WWW-Authenticate.
    "AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Django's model permissions, reading included (view_*).
    "PERMISSION_CLASSES": ["crmsync.api.permissions.ModelPermissions"],
    "PAGINATION_CLASS": "crmsync.api.pagination.Pagination",
    "THROTTLE_CLASSES": [
        "crmsync.api.throttling.AnonRateThrottle",
        "crmsync.api.throttling.UserRateThrottle",
    ],
    # Merged key by key with the host's; None turns a throttle off.
    "THROTTLE_RATES": {"anon": "60/minute", "user": "1200/minute"},
    # The cache alias throttles count in: share it between processes (Redis, database).
    "THROTTLE_CACHE": "default",
    "SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Who may read /schema/ and /docs/: authenticated users unless opened
    # (["rest_framework.permissions.AllowAny"]).
    "SCHEMA_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
}

DEFAULTS: dict[str, Any] = {
    "ADAPTERS": {
        "local": "crmsync.adapters.local.LocalAdapter",
        "notion": "crmsync.adapters.notion.NotionAdapter",
        # An in-memory CRM for tests (crmsync.testing.FakeAdapter).
        "fake": "crmsync.testing.fake.FakeAdapter",
    },
    "CONNECTIONS": {},
    # Seconds between two scheduled syncs of a connection; whole minutes, since
    # django-q2 schedules in minutes.
    "SYNC_INTERVAL": 60,
    # Days SyncRun rows and resolved conflicts are kept.
    "RETENTION_DAYS": 30,
    # Failures of one record before it is quarantined (kept out of syncs until edited).
    "MAX_RECORD_FAILURES": 3,
    # Seconds one run may last before it stops and leaves the rest for the next run.
    # Keep it below django-q2's task timeout.
    "RUN_TIME_LIMIT": 240,
    # Seconds a sync lease lasts without renewal (renewed by a heartbeat while a run lives;
    # a killed worker's lease is taken over at once on its host, after this elsewhere).
    "LEASE_SECONDS": 30,
    "API": API_DEFAULTS,
}

# Settings whose value is a dict merged key by key with the default.
MERGED = ("ADAPTERS", "API")


class AppSettings:
    """settings.CRMSYNC, with DEFAULTS for missing keys. Read on every access."""

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"Unknown CRMSYNC setting {name!r}")
        configured = getattr(settings, "CRMSYNC", {})
        if not isinstance(configured, dict):
            configured = {}  # crmsync.E001 reports it at startup
        value = configured.get(name, DEFAULTS[name])
        if name == "API":
            merged = {**API_DEFAULTS, **value}
            merged["THROTTLE_RATES"] = {**API_DEFAULTS["THROTTLE_RATES"], **value.get("THROTTLE_RATES", {})}
            return merged
        return {**DEFAULTS[name], **value} if name in MERGED else value


app_settings = AppSettings()

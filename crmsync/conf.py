"""App settings: ``settings.CRMSYNC`` with defaults, read on every access."""

from django.conf import settings

DEFAULTS = {
    "ADAPTERS": {
        "local": "crmsync.adapters.local.LocalAdapter",
        "notion": "crmsync.adapters.notion.NotionAdapter",
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
}


class AppSettings:
    """settings.CRMSYNC, with DEFAULTS for missing keys. Read on every access."""

    def __getattr__(self, name):
        if name not in DEFAULTS:
            raise AttributeError(f"Unknown CRMSYNC setting {name!r}")
        value = getattr(settings, "CRMSYNC", {}).get(name, DEFAULTS[name])
        return {**DEFAULTS[name], **value} if name == "ADAPTERS" else value


app_settings = AppSettings()

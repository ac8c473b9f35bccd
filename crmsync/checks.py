"""System checks: bad CRMSYNC configuration is reported at startup.

crmsync.E001  CRMSYNC is not a dict / has unknown keys
crmsync.E002  a connection cannot be built (unknown adapter, bad or missing option)
crmsync.E003  SYNC_INTERVAL is not a whole number of minutes
"""

from django.conf import settings
from django.core import checks

from .conf import DEFAULTS
from .registry import build_adapter


@checks.register("crmsync")
def check_settings(app_configs=None, **kwargs):
    errors = []
    configured = getattr(settings, "CRMSYNC", {})
    if not isinstance(configured, dict):
        return [checks.Error("settings.CRMSYNC must be a dict.", id="crmsync.E001")]
    unknown = sorted(set(configured) - set(DEFAULTS))
    if unknown:
        errors.append(
            checks.Error(
                f"Unknown CRMSYNC keys: {', '.join(unknown)}.",
                hint=f"Known keys: {', '.join(sorted(DEFAULTS))}.",
                id="crmsync.E001",
            )
        )
    for alias in configured.get("CONNECTIONS", {}):
        try:
            build_adapter(alias).close()
        except Exception as err:  # any construction failure is a configuration problem
            errors.append(checks.Error(str(err), obj=f'CRMSYNC["CONNECTIONS"][{alias!r}]', id="crmsync.E002"))
    interval = configured.get("SYNC_INTERVAL", DEFAULTS["SYNC_INTERVAL"])
    if not isinstance(interval, int) or interval < 60 or interval % 60:
        errors.append(
            checks.Error(
                f'CRMSYNC["SYNC_INTERVAL"] = {interval!r}: use a whole number of minutes in seconds (60, 120, ...).',
                hint="django-q2 schedules in minutes.",
                id="crmsync.E003",
            )
        )
    return errors

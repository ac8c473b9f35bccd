"""Throttles with rates from ``CRMSYNC["API"]["THROTTLE_RATES"]``, counted in the cache
``CRMSYNC["API"]["THROTTLE_CACHE"]``: use a cache every process shares (Redis, the
database), or each worker counts on its own and the rate is multiplied by their number."""

from django.core.cache import caches
from rest_framework import throttling

from ..conf import app_settings


class SettingsRateMixin(throttling.SimpleRateThrottle):
    rate_name = ""

    def __init__(self) -> None:
        self.cache = caches[app_settings.API["THROTTLE_CACHE"]]
        super().__init__()

    def get_rate(self) -> str | None:
        return app_settings.API["THROTTLE_RATES"].get(self.rate_name)


class AnonRateThrottle(SettingsRateMixin, throttling.AnonRateThrottle):
    """Calls without credentials, per client address (rate "anon")."""

    rate_name = "anon"
    scope = "crmsync_anon"  # its own cache keys: the host's throttles count apart


class UserRateThrottle(SettingsRateMixin, throttling.UserRateThrottle):
    """Authenticated calls, per user (rate "user")."""

    rate_name = "user"
    scope = "crmsync_user"

"""Connections to CRMs, built lazily from ``CRMSYNC`` and cached per alias.

    from crmsync.registry import connections
    adapter = connections["notion"]

Like Django's ``caches``: an unknown alias or adapter raises ``ConfigurationError``
naming the setting to fix; the cache is dropped when ``CRMSYNC`` changes
(``override_settings`` works).
"""

import threading

from django.core.signals import setting_changed
from django.utils.module_loading import import_string
from django.views.decorators.debug import sensitive_variables

from .conf import app_settings
from .exceptions import ConfigurationError


# The options hold the CRM's token: error reports (with DEBUG off) must not show them
# among a frame's local variables. (With DEBUG on, Django shows every local by design.)
@sensitive_variables("configured", "config")
def _connection_config(alias: str) -> dict:
    configured = app_settings.CONNECTIONS
    if alias not in configured:
        known = ", ".join(sorted(configured)) or "none"
        raise ConfigurationError(
            f'Unknown crmsync connection {alias!r}: add it to CRMSYNC["CONNECTIONS"] (configured: {known}).'
        )
    config = configured[alias]
    if not isinstance(config, dict) or "ADAPTER" not in config:
        raise ConfigurationError(f'CRMSYNC["CONNECTIONS"][{alias!r}] must be a dict with an "ADAPTER" key.')
    unknown = set(config) - {"ADAPTER", "OPTIONS"}
    if unknown:
        raise ConfigurationError(
            f'CRMSYNC["CONNECTIONS"][{alias!r}] has unknown keys {sorted(unknown)}; '
            'allowed: "ADAPTER", "OPTIONS".'
        )
    return config


def adapter_class(name: str):
    adapters = app_settings.ADAPTERS
    if name not in adapters:
        raise ConfigurationError(
            f'Unknown crmsync adapter {name!r}: add it to CRMSYNC["ADAPTERS"] (known: {", ".join(sorted(adapters))}).'
        )
    try:
        return import_string(adapters[name])
    except ImportError as err:
        raise ConfigurationError(
            f'CRMSYNC["ADAPTERS"][{name!r}] = {adapters[name]!r} cannot be imported: {err}'
        ) from err


@sensitive_variables("config", "options")
def build_adapter(alias: str):
    config = _connection_config(alias)
    cls = adapter_class(config["ADAPTER"])
    options = config.get("OPTIONS", {})
    if not isinstance(options, dict):
        raise ConfigurationError(f'CRMSYNC["CONNECTIONS"][{alias!r}]["OPTIONS"] must be a dict.')
    return cls(alias=alias, **options)


class ConnectionHandler:
    def __init__(self):
        self._local = threading.local()

    @property
    def _adapters(self) -> dict:
        if not hasattr(self._local, "adapters"):
            self._local.adapters = {}
        return self._local.adapters

    def __getitem__(self, alias: str):
        try:
            return self._adapters[alias]
        except KeyError:
            adapter = self._adapters[alias] = build_adapter(alias)
            return adapter

    def __iter__(self):
        return iter(app_settings.CONNECTIONS)

    def aliases(self) -> list[str]:
        return list(app_settings.CONNECTIONS)

    def aliases_for(self, entity: str) -> list[str]:
        """Connections whose adapter syncs ``entity``."""
        return [alias for alias in self.aliases() if entity in self[alias].entities]

    def reset(self) -> None:
        """Forget built adapters (closing their clients); the next access rebuilds them."""
        for adapter in self._adapters.values():
            adapter.close()
        self._local = threading.local()


connections = ConnectionHandler()


def _reset_on_settings_change(*, setting, **kwargs):
    if setting == "CRMSYNC":
        connections.reset()


setting_changed.connect(_reset_on_settings_change)

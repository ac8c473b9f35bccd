"""The errors crmsync raises on purpose."""

from django.core.exceptions import ImproperlyConfigured


class CrmSyncError(Exception):
    """Base for errors crmsync raises on purpose."""


class AdapterError(CrmSyncError):
    """A CRM answered with an error, or could not be reached.

    Carries the adapter alias, the HTTP status, the CRM's error code and message.
    Never the token: adapters build these from response bodies, never from requests.
    """

    def __init__(self, message, *, alias=None, status=None, code=None, retry_after=None):
        super().__init__(message)
        self.message = message
        self.alias = alias
        self.status = status
        self.code = code
        self.retry_after = retry_after

    def __str__(self):
        where = f"[{self.alias}] " if self.alias else ""
        status = f"{self.status} " if self.status else ""
        code = f"{self.code}: " if self.code else ""
        return f"{where}{status}{code}{self.message}"


class TransientAdapterError(AdapterError):
    """Safe to retry: 429, 5xx, timeouts, connection errors."""


class AmbiguousWriteError(TransientAdapterError):
    """A create was sent but its outcome is unknown (timeout or 5xx after sending).

    Never re-send such a create blindly: look the record up by its sync id first.
    """


class RemoteNotFound(AdapterError):
    """The remote record does not exist or is not shared with the integration."""


class MappingError(CrmSyncError, ValueError):
    """A value cannot be translated to or from the CRM's representation."""

    def __init__(self, message, *, field=None, prop=None):
        super().__init__(message)
        self.field = field
        self.prop = prop


class SyncInProgress(CrmSyncError):
    """Another run holds the connection's lease."""


class LeaseLost(CrmSyncError):
    """The run's lease expired and was taken over; it must stop without committing."""


class ConfigurationError(ImproperlyConfigured):
    """Bad settings. Not a CrmSyncError, so never swallowed."""

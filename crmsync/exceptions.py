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


class RateLimitDeferred(TransientAdapterError):
    """The CRM asked to wait longer than the connection's ``max_retry_wait`` (or a hold it
    asked for earlier is still on): nothing more can be sent before ``until``.

    Not an error of the run: stop early and report the run as deferred. ``until`` is an
    aware UTC datetime; ``scope`` is "connection" or "workspace" (a workspace limit holds
    every connection that uses the same token); ``reason`` is the CRM's own word for the
    limit (Notion: ``additional_data.rate_limit_reason``), when it gives one.
    """

    def __init__(self, message, *, until, scope="connection", reason=None, **kwargs):
        super().__init__(message, **kwargs)
        self.until = until
        self.scope = scope
        self.reason = reason


class CapExceeded(AdapterError):
    """A listing cannot go on without skipping records: more records share one timestamp
    than one query of the CRM returns (Notion: 10,000), and nothing else splits them.

    Not transient: every run hits it again until the CRM's side changes (for Notion, an
    ID property in the data source). ``cap`` is the number of rows the query returned;
    ``at`` is the timestamp they share.
    """

    def __init__(self, message, *, cap=None, at=None, **kwargs):
        super().__init__(message, **kwargs)
        self.cap = cap
        self.at = at


class RemoteNotFound(AdapterError):
    """The remote record does not exist or is not shared with the integration."""


class MappingError(CrmSyncError, ValueError):
    """A value cannot be translated to or from the CRM's representation."""

    def __init__(self, message, *, field=None, prop=None):
        super().__init__(message)
        self.field = field
        self.prop = prop


class FieldBlocked(MappingError):
    """A field cannot be written: its remote property is missing or has another type
    (schema drift). The adapter's ``blocked_fields(entity)`` lists such fields first."""

    def __init__(self, message, *, field=None, prop=None, reason=None):
        super().__init__(message, field=field, prop=prop)
        self.reason = reason


class SyncInProgress(CrmSyncError):
    """Another run holds the connection's lease."""


class LeaseLost(CrmSyncError):
    """The run's lease expired and was taken over; it must stop without committing."""


class ConfigurationError(ImproperlyConfigured):
    """Bad settings. Not a CrmSyncError, so never swallowed."""

    # The system check id that reports it (``crmsync.checks``).
    check_id = "crmsync.E002"


class InvalidOption(ConfigurationError):
    """An option's value has the wrong form (a malformed id, say); names the option."""

    check_id = "crmsync.E005"

    def __init__(self, message, *, option=None):
        super().__init__(message)
        self.option = option

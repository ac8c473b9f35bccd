"""The clock local edit times are recorded on: the CRM's (DESIGN §8).

Last-write-wins compares a local field's edit time with the CRM's edit time, so both
must come from one clock. Each run measures the CRM's clock against ours (Notion: its
``Date`` header) and stores the offset on the connection; a user's save stamps its
fields with ``remote_now()``. An offset under ``SIGNIFICANT`` seconds is within the
measurement's precision (the header has whole seconds) and is ignored.
"""

import datetime as dt

from django.utils import timezone

SIGNIFICANT = 2.0  # seconds


def remote_offset() -> dt.timedelta:
    """The CRM's clock minus ours, as last measured (zero when unknown or negligible)."""
    from .models import SyncConnection

    seconds = (
        SyncConnection.objects.filter(clock_offset__isnull=False)
        .order_by("-last_success_at")
        .values_list("clock_offset", flat=True)
        .first()
    )
    if seconds is None or abs(seconds) < SIGNIFICANT:
        return dt.timedelta(0)
    return dt.timedelta(seconds=seconds)


def remote_now() -> dt.datetime:
    """Now, on the CRM's clock."""
    return timezone.now() + remote_offset()

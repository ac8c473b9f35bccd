"""A changelist count that stops early, for the admin's "sync state" filter (issue 15).

A sync state is three EXISTS probes per row (link, outbox entry, open conflict): an exact
COUNT of "linked" deals joins every link and took 100-170 ms at 100,000 deals, where the
plain changelist's COUNT over a column takes 12 ms. The count below reads at most as many
rows as the pages up to ``PAGES_AHEAD`` past the one asked for; beyond that the total
is shown as "N+" (the pages up to N stay reachable, the next ones come into view as you
page on). Every page is still exactly the rows the filter selects.
"""

from typing import cast

from django.conf import settings
from django.contrib.admin.views.main import PAGE_VAR, SEARCH_VAR
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.utils.functional import cached_property

PAGES_AHEAD = 5
MAX_BOUNDED_PAGE = 1_000_000  # beyond it, LIMIT page × per page could overflow a 64-bit integer


class AtLeast(int):
    """A row count known only to be at least this much: shown as "N+"."""

    def __str__(self) -> str:
        return f"{int(self)}+"


class BoundedCountPaginator(Paginator):
    """A paginator whose ``count`` reads at most ``bound + 1`` rows: exact up to
    ``bound``, else ``AtLeast(bound)``."""

    def __init__(self, object_list, per_page, orphans=0, allow_empty_first_page=True, *, bound: int):
        super().__init__(object_list, per_page, orphans, allow_empty_first_page)
        self.bound = bound

    @cached_property
    def count(self) -> int:
        # No ORDER BY: the database stops at the first bound + 1 rows it finds.
        queryset = cast(QuerySet, self.object_list)
        counted = queryset.order_by()[: self.bound + 1].count()
        return AtLeast(self.bound) if counted > self.bound else counted


def count_bound(request, per_page: int) -> int | None:
    """Rows to count for a changelist request, or None for an exact count.

    Exact where the number is shown in a way "N+" cannot be: with a search term (the
    search box's "N results" needs a number) or with thousand separators on (they
    would be put between the digits of "N+")."""
    if request.GET.get(SEARCH_VAR) or settings.USE_THOUSAND_SEPARATOR:
        return None
    try:
        page = max(1, int(request.GET.get(PAGE_VAR, 1)))
    except ValueError:
        page = 1  # the changelist itself answers a bad page number
    if page > MAX_BOUNDED_PAGE:
        return None  # counted exactly: the changelist answers a page past the end (no LIMIT overflow)
    return per_page * (page + PAGES_AHEAD)

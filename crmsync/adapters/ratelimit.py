"""A request budget shared by every process using one connection.

GCRA (the "generic cell rate algorithm", a token bucket kept as one number): the
row holds the theoretical arrival time (TAT) of the next request. A caller reserves
a slot with one atomic ``UPDATE ... RETURNING`` (PostgreSQL, SQLite 3.35+), or else
with a compare-and-swap UPDATE (row count checked, so it needs no ``select_for_update``),
then sleeps until its slot. No transaction is held while waiting or while the request
is in flight.

Slots are claimed a block at a time: one statement takes as many consecutive slots as
the rate gives in a second (at most ``MAX_BLOCK``), and this process hands them out one
per request. Other processes on the same budget get their slots after the block. A
slot is used at most one interval after its time (a process slower than the rate skips
the slots it missed and, once its block is spent, claims again), so no window ever holds
more than one request beyond what per-request claims allowed. The slots of a block left
when a process stops (at most a second's worth) are not given back; after a 429
(``hold_off``) they are dropped.

On PostgreSQL a claim's commit does not wait for the disk (``synchronous_commit`` off
for that one statement, outside any transaction of the caller): a budget row rolled back
a fraction of a second by a database crash costs nothing, and the wait for the write-ahead
log cost more CPU than the HTTP request itself (issue 15: 350 µs vs 190 µs per claim).
"""

import contextlib
import threading
import time

from django.db import IntegrityError, connections, router, transaction


MAX_BLOCK = 20  # slots claimed by one statement, at most


def block_for(rate: float) -> int:
    """Slots one claim takes: a second's worth at ``rate``, between 1 and ``MAX_BLOCK``."""
    return max(1, min(MAX_BLOCK, int(rate)))


class RateBudget:
    """The budget of ``key``: ``rate`` requests per second, ``burst`` of them at once.

    ``block`` slots are claimed per statement (default: ``block_for(rate)``).
    """

    def __init__(
        self,
        key: str,
        rate: float,
        burst: int = 1,
        *,
        block: int | None = None,
        sleep=time.sleep,
        clock=time.time,
    ):
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.key, self.rate, self.burst = key, rate, max(1, int(burst))
        self.block = max(1, int(block)) if block else block_for(rate)
        self.sleep, self.clock = sleep, clock
        # One UPDATE ... RETURNING per claim where the database has it; None: decide by backend.
        self.single_statement: bool | None = None
        self._lock = threading.Lock()
        self._next, self._left = 0.0, 0  # this process's next claimed slot, and how many remain

    def reserve(self) -> float:
        """Reserve the next slot; returns the seconds to wait before sending."""
        interval = 1.0 / self.rate
        with self._lock:
            now = self.clock()
            while self._left and self._next < now - interval:
                # Missed: sent now, it would crowd the slots of the next block.
                self._next, self._left = self._next + interval, self._left - 1
            if not self._left:
                self._next, self._left = self._claim(self.block, interval, now), self.block
            slot = self._next
            self._next, self._left = slot + interval, self._left - 1
        return max(0.0, slot - (self.burst - 1) * interval - now)

    def _claim(self, count: int, interval: float, now: float) -> float:
        """Take ``count`` consecutive slots in the shared row; returns the first one's time."""
        from ..models import RateBudget as Row

        span = count * interval
        connection = connections[router.db_for_write(Row)]
        rows = Row.objects.using(connection.alias)
        one_statement = self.single_statement
        if one_statement is None:
            one_statement = connection.vendor == "postgresql" or (
                connection.vendor == "sqlite"
                and getattr(connection, "Database").sqlite_version_info >= (3, 35)  # noqa: B009 (not in the stubs)
            )
        # One statement, one round trip: the slots start at max(TAT, now); the TAT moves past them.
        table, tat, key = map(connection.ops.quote_name, (Row._meta.db_table, "tat", "key"))
        take_slots = (
            f"UPDATE {table} SET {tat} = CASE WHEN {tat} > %s THEN {tat} ELSE %s END + %s "
            f"WHERE {key} = %s RETURNING {tat}"
        )
        if connection.vendor == "postgresql" and not connection.in_atomic_block:
            # The statement is its own transaction: its commit need not wait for the disk.
            take_slots = (
                "WITH nondurable AS (SELECT set_config('synchronous_commit', 'off', true)) "
                + take_slots.replace(" WHERE ", " FROM nondurable WHERE ", 1)
            )
        for _ in range(1000):
            if one_statement:
                with connection.cursor() as cursor:
                    cursor.execute(take_slots, [now, now, span, self.key])
                    row = cursor.fetchone()
                if row is not None:
                    return row[0] - span
            else:
                stored = rows.filter(key=self.key).values_list("tat", flat=True).first()
                if stored is not None:
                    first = max(stored, now)
                    if rows.filter(key=self.key, tat=stored).update(tat=first + span):
                        return first
                    continue  # another process took these slots: read again
            try:
                with transaction.atomic(using=connection.alias):
                    rows.create(key=self.key, tat=0.0)
            except IntegrityError:
                pass  # another process created it
        raise RuntimeError(f"could not reserve a request slot for {self.key!r}")

    def acquire(self) -> float:
        """Wait for the next slot; returns the seconds waited."""
        wait = self.reserve()
        if wait:
            self.sleep(wait)
        return wait

    def hold_off(self, seconds: float) -> None:
        """After a 429: no other process sends on this budget for ``seconds``.

        The caller sleeps ``seconds`` itself, so its own next slot is free by then; the
        slots this process still holds are dropped (they would go out at once after it).
        """
        from ..models import RateBudget as Row

        with self._lock:
            self._left = 0
        until = self.clock() + seconds
        Row.objects.filter(key=self.key, tat__lt=until).update(tat=until)


class Hold:
    """A time before which nothing is sent on any of ``keys``, shared by every process.

    Kept in the same table as the budgets (``tat`` = the Unix time the hold ends): a
    connection's own key and, for limits shared by several connections (Notion's
    per-workspace limit), a key those connections share. Reads are cached for
    ``refresh`` seconds, so a request costs no query while nothing is held.
    """

    def __init__(self, keys, *, refresh: float = 5.0, clock=time.time):
        self.keys, self.refresh, self.clock = list(keys), refresh, clock
        self._until, self._read_at = 0.0, None

    def until(self) -> float:
        """The Unix time the longest hold on any key ends (0.0: none)."""
        from ..models import RateBudget as Row

        now = self.clock()
        if self._read_at is None or now - self._read_at >= self.refresh:
            stored = Row.objects.filter(key__in=self.keys).values_list("tat", flat=True)
            self._until, self._read_at = max(stored, default=0.0), now
        return self._until

    def hold(self, until: float, keys=None) -> None:
        """Send nothing on ``keys`` (default: all of them) before ``until``."""
        from ..models import RateBudget as Row

        for key in keys or self.keys:
            if not Row.objects.filter(key=key, tat__lt=until).update(tat=until):
                with contextlib.suppress(IntegrityError), transaction.atomic(using=router.db_for_write(Row)):
                    Row.objects.get_or_create(key=key, defaults={"tat": until})
        self._until = max(self._until, until)

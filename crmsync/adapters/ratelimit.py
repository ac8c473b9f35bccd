"""A request budget shared by every process using one connection.

GCRA (the "generic cell rate algorithm", a token bucket kept as one number): the
row holds the theoretical arrival time (TAT) of the next request. A caller reserves
a slot with one atomic ``UPDATE ... RETURNING`` (PostgreSQL, SQLite 3.35+), or else
with a compare-and-swap UPDATE (row count checked, so it needs no ``select_for_update``),
then sleeps until its slot. No transaction is held while waiting or while the request
is in flight.

On PostgreSQL a claim's commit does not wait for the disk (``synchronous_commit`` off
for that one statement, never inside a transaction of the caller's): a budget row rolled
back a fraction of a second by a database crash costs nothing, and waiting for the
write-ahead log cost more CPU than the HTTP request itself (issue 15: about 350 µs
against 190 µs of CPU per claim, 2.5 ms against 0.5 ms of wall time).

Slots are claimed one per request, on purpose: claiming several per statement (tried
for issue 15) let a process send slots it held after another process's 429, crowd a
second with a missed slot and the next, and hold slots a short-lived process never sent.
"""

import contextlib
import time

from django.db import IntegrityError, connections, router, transaction

LATE_AFTER = 0.005  # seconds past its slot a woken caller still sends on it, at least


class RateBudget:
    def __init__(self, key: str, rate: float, burst: int = 1, *, sleep=time.sleep, clock=time.time):
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.key, self.rate, self.burst = key, rate, max(1, int(burst))
        self.sleep, self.clock = sleep, clock
        # One UPDATE ... RETURNING per slot where the database has it; None: decide by backend.
        self.single_statement: bool | None = None

    def reserve(self) -> float:
        """Reserve the next slot; returns the seconds to wait before sending."""
        from ..models import RateBudget as Row

        interval = 1.0 / self.rate
        tolerance = (self.burst - 1) * interval
        connection = connections[router.db_for_write(Row)]
        rows = Row.objects.using(connection.alias)
        one_statement = self.single_statement
        if one_statement is None:
            one_statement = connection.vendor == "postgresql" or (
                connection.vendor == "sqlite"
                and getattr(connection, "Database").sqlite_version_info >= (3, 35)  # noqa: B009 (not in the stubs)
            )
        # One statement, one round trip: the slot is max(TAT, now); the TAT moves past it.
        table, tat, key = map(connection.ops.quote_name, (Row._meta.db_table, "tat", "key"))
        take_slot = (
            f"UPDATE {table} SET {tat} = CASE WHEN {tat} > %s THEN {tat} ELSE %s END + %s "
            f"WHERE {key} = %s RETURNING {tat}"
        )
        if connection.vendor == "postgresql" and not connection.in_atomic_block:
            # The statement is its own transaction: its commit need not wait for the disk.
            take_slot = (
                "WITH nondurable AS (SELECT set_config('synchronous_commit', 'off', true)) "
                + take_slot.replace(" WHERE ", " FROM nondurable WHERE ", 1)
            )
        for _ in range(1000):
            now = self.clock()
            if one_statement:
                with connection.cursor() as cursor:
                    cursor.execute(take_slot, [now, now, interval, self.key])
                    row = cursor.fetchone()
                if row is not None:
                    return max(0.0, row[0] - interval - tolerance - now)
            else:
                stored = rows.filter(key=self.key).values_list("tat", flat=True).first()
                if stored is not None:
                    tat = max(stored, now)
                    if rows.filter(key=self.key, tat=stored).update(tat=tat + interval):
                        return max(0.0, tat - tolerance - now)
                    continue  # another process took this slot: read again
            try:
                with transaction.atomic(using=connection.alias):
                    rows.create(key=self.key, tat=0.0)
            except IntegrityError:
                pass  # another process created it
        raise RuntimeError(f"could not reserve a request slot for {self.key!r}")

    def acquire(self) -> float:
        """Wait for the next slot; returns the seconds waited.

        A caller that wakes more than one interval after its slot (a paused or starved
        process) takes a fresh slot instead: sent on the old one, it would crowd the
        slots other processes took meanwhile. (Never less than ``LATE_AFTER``: at very high
        rates an ordinary sleep overshoots an interval.)"""
        late = max(1.0 / self.rate, LATE_AFTER)
        waited = 0.0
        for _ in range(10):
            wait = self.reserve()
            due = self.clock() + wait
            if wait:
                self.sleep(wait)
                waited += wait
            if self.clock() - due <= late:
                break
        return waited

    def hold_off(self, seconds: float) -> None:
        """After a 429: no other process sends on this budget for ``seconds``.

        The caller sleeps ``seconds`` itself, so its own next slot is free by then.
        """
        from ..models import RateBudget as Row

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

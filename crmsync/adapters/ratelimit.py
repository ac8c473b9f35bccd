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

One claim covers the slots due within the next ``CLAIM_WINDOW`` (0.1 s): one slot below
20 requests per second (Notion's 3, HubSpot's 10 to 19). Above that rate one statement
per request cost more CPU than the request's own JSON (issue 15). A slot claimed alone is
sent at most an interval late; slots claimed together at most a window late (so no span
of T seconds carries more than ``rate × (T + 0.1)`` requests plus the burst); a slot
missed by more (a paused process, or one slower than the rate) is dropped, never sent
onto the slots after it. A 429 drops this process's claimed slots; slots claimed and
never sent are lost, at most a window's worth per claim. A 429's hold is kept in a row of
its own (a ``Hold``): a process reads it before it sends, at most every 50 ms, so no
request leaves more than 50 ms into a Retry-After another process was given.
"""

import collections
import contextlib
import time

from django.db import IntegrityError, connections, router, transaction

LATE_AFTER = 0.005  # seconds past its slot a woken caller still sends on it, at least
CLAIM_WINDOW = 0.1  # seconds of slots one claim may cover
CLAIM_MAX = 100  # slots one claim may cover
HOLD_REFRESH = 0.05  # seconds a process sends on without reading the budget's hold again


class RateBudget:
    def __init__(self, key: str, rate: float, burst: int = 1, *, sleep=time.sleep, clock=time.time):
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.key, self.rate, self.burst = key, rate, max(1, int(burst))
        self.sleep, self.clock = sleep, clock
        # One UPDATE ... RETURNING per claim where the database has it; None: decide by backend.
        self.single_statement: bool | None = None
        self.chunk = max(1, min(CLAIM_MAX, int(rate * CLAIM_WINDOW)))  # slots per claim
        # How long past its slot a request may still be sent: an interval for a slot
        # claimed alone; a claim's window for slots claimed together (a process slower
        # than the rate uses some and drops the rest).
        self.late = max(1.0 / rate, LATE_AFTER) if self.chunk == 1 else CLAIM_WINDOW
        self._slots: collections.deque[float] = collections.deque()  # claimed, unsent: when due
        self._statements: dict = {}
        # The hold a 429 set (hold_off), in a row of its own: read before sending (at most
        # every HOLD_REFRESH seconds), it voids a slot claimed before the 429.
        self.hold = Hold([f"{key}:hold"[:100]], refresh=HOLD_REFRESH, clock=clock)

    def reserve(self) -> float:
        """Reserve the next slot; returns the seconds to wait before sending.

        Takes this process's next claimed slot, or claims the next ``chunk`` slots; a
        claimed slot already more than an interval past is dropped (see ``acquire``)."""
        now = self.clock()
        while self._slots and now - self._slots[0] > self.late:
            self._slots.popleft()
        if not self._slots:
            first, interval = self._claim(self.chunk, now), 1.0 / self.rate
            self._slots.extend(max(now, first + i * interval) for i in range(self.chunk))
        return max(0.0, self._slots.popleft() - now)

    def _claim(self, count: int, now: float) -> float:
        """Claim ``count`` consecutive slots; returns when the first may be sent."""
        from ..models import RateBudget as Row

        interval = 1.0 / self.rate
        tolerance = (self.burst - 1) * interval
        connection = connections[router.db_for_write(Row)]
        rows = Row.objects.using(connection.alias)
        for _ in range(1000):
            take_slots = self._statement(connection)
            if take_slots:
                with connection.cursor() as cursor:
                    cursor.execute(take_slots, [now, now, count * interval, self.key])
                    row = cursor.fetchone()
                if row is not None:
                    return row[0] - count * interval - tolerance
            else:
                stored = rows.filter(key=self.key).values_list("tat", flat=True).first()
                if stored is not None:
                    tat = max(stored, now)
                    if rows.filter(key=self.key, tat=stored).update(tat=tat + count * interval):
                        return tat - tolerance
                    now = self.clock()
                    continue  # another process took these slots: read again
            try:
                with transaction.atomic(using=connection.alias):
                    rows.create(key=self.key, tat=0.0)
            except IntegrityError:
                pass  # another process created it
            now = self.clock()
        raise RuntimeError(f"could not reserve a request slot for {self.key!r}")

    def _statement(self, connection) -> str | None:
        """The one-statement claim for ``connection`` (None: compare and swap instead),
        built once per backend and transaction state."""
        from ..models import RateBudget as Row

        nondurable = connection.vendor == "postgresql" and not connection.in_atomic_block
        cache_key = (connection.alias, self.single_statement, nondurable)
        if cache_key in self._statements:
            return self._statements[cache_key]
        one_statement = self.single_statement
        if one_statement is None:
            one_statement = connection.vendor == "postgresql" or (
                connection.vendor == "sqlite"
                and getattr(connection, "Database").sqlite_version_info >= (3, 35)  # noqa: B009 (not in the stubs)
            )
        sql = None
        if one_statement:
            # One statement, one round trip: the first slot is max(TAT, now); the TAT moves
            # past the last.
            table, tat, key = map(connection.ops.quote_name, (Row._meta.db_table, "tat", "key"))
            sql = (
                f"UPDATE {table} SET {tat} = CASE WHEN {tat} > %s THEN {tat} ELSE %s END + %s "
                f"WHERE {key} = %s RETURNING {tat}"
            )
            if nondurable:
                # The statement is its own transaction: its commit need not wait for the disk.
                sql = (
                    "WITH nondurable AS (SELECT set_config('synchronous_commit', 'off', true)) "
                    + sql.replace(" WHERE ", " FROM nondurable WHERE ", 1)
                )
        self._statements[cache_key] = sql
        return sql

    def acquire(self) -> float:
        """Wait for the next slot; returns the seconds waited.

        A caller that wakes more than one interval after its slot (a paused or starved
        process) takes a fresh slot instead: sent on the old one, it would crowd the
        slots other processes took meanwhile. (Never less than ``LATE_AFTER``: at very high
        rates an ordinary sleep overshoots an interval.)"""
        waited = 0.0
        for _ in range(10):
            wait = self.reserve()
            due = self.clock() + wait
            if wait:
                self.sleep(wait)
                waited += wait
            held = self.hold.until() - self.clock()
            if held > 0:
                # A 429 (in this process or another) came while this slot waited: the slot
                # is void; after the hold, slots are claimed afresh.
                self._slots.clear()
                self.sleep(held)
                waited += held
                continue
            if self.clock() - due <= self.late:
                break
        return waited

    def hold_off(self, seconds: float) -> None:
        """After a 429: no process sends on this budget for ``seconds``.

        Slots claimed from now on start after the hold; a slot another process claimed
        before it is void when that process reads the hold (before sending, at most
        ``HOLD_REFRESH`` seconds after it was set). The caller sleeps ``seconds`` itself.
        """
        from ..models import RateBudget as Row

        self._slots.clear()
        until = self.clock() + seconds
        Row.objects.filter(key=self.key, tat__lt=until).update(tat=until)
        self.hold.hold(until)


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

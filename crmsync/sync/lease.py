"""One sync of a connection at a time, across processes and machines (DESIGN §3, §8).

The lease is a pair of columns on the connection's row, taken and renewed by
conditional UPDATEs whose row count is checked (``select_for_update`` does nothing on
SQLite). A holder's name is ``host:pid:nonce``:

- a lease whose holder ran on this host and whose process is gone is taken over at
  once (a SIGKILLed worker leaves no one to release it);
- elsewhere it is taken over when it expires, ``LEASE_SECONDS`` after its last renewal.

While a run lives, a heartbeat thread renews the lease every third of
``LEASE_SECONDS``, so a long HTTP wait does not let it lapse. Every transaction the
engine commits first checks (and renews) the lease, so a run that lost it stops
without committing anything.
"""

import contextlib
import datetime as dt
import logging
import os
import socket
import threading
import uuid
from collections.abc import Iterator

from django.db import connection as default_connection
from django.db import connections, router, transaction
from django.db.models import Q
from django.utils import timezone

from ..choices import RunStatus
from ..conf import app_settings
from ..exceptions import LeaseLost
from ..models import SyncConnection, SyncRun

logger = logging.getLogger(__name__)


def holder_name() -> str:
    """A unique lease holder name: ``host:pid:nonce``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def holder_is_dead(owner: str) -> bool:
    """True when ``owner`` ran on this host and its process no longer exists."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        return False  # this process: maybe another engine in it, alive
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, owned by another user
    return False


class Lease:
    """The lease of one connection, held by ``owner``."""

    def __init__(self, alias: str, owner: str | None = None):
        self.alias = alias
        self.owner = owner or holder_name()
        self._heartbeat: threading.Thread | None = None
        self._stop = threading.Event()
        self.lost = False

    def _expiry(self) -> dt.datetime:
        return timezone.now() + dt.timedelta(seconds=app_settings.LEASE_SECONDS)

    def acquire(self) -> bool:
        """Take the lease if it is free, expired, ours, or held by a dead process of this
        host; close the run record a dead holder left behind. Returns whether it is ours."""
        SyncConnection.objects.get_or_create(alias=self.alias)
        now = timezone.now()
        current = SyncConnection.objects.filter(alias=self.alias).values("lease_owner", "lease_expires_at")[0]
        previous = current["lease_owner"]
        free = Q(lease_owner="") | Q(lease_expires_at__lt=now) | Q(lease_owner=self.owner)
        dead = bool(previous) and previous != self.owner and holder_is_dead(previous)
        if dead:
            free |= Q(lease_owner=previous)
        taken = (
            SyncConnection.objects.filter(alias=self.alias)
            .filter(free)
            .update(lease_owner=self.owner, lease_expires_at=self._expiry())
        )
        if taken != 1:
            return False
        expired = current["lease_expires_at"] is not None and current["lease_expires_at"] < now
        if previous and previous != self.owner and (dead or expired):
            reason = "its process is gone" if dead else "its lease expired"
            SyncRun.objects.filter(connection=self.alias, status=RunStatus.RUNNING).update(
                status=RunStatus.FAILED,
                finished_at=now,
                error_summary=f"The worker stopped before finishing ({reason}).",
            )
        return True

    def renew(self) -> None:
        """Extend the lease; raises LeaseLost when another holder took it."""
        if self._extend() != 1 or self.lost:
            self.lost = True
            raise LeaseLost(f"The lease on {self.alias!r} was taken over; stopping without committing.")

    def _extend(self) -> int:
        """Move the expiry on if this holder still has the lease; returns the rows changed
        (1, or 0 when it was taken over). One UPDATE written out: run before every commit
        of a run, the ORM's building of it cost more CPU than the write (issue 15:
        0.5 ms against 0.12 on SQLite, 1.2 against 0.47 on PostgreSQL)."""
        connection = connections[router.db_for_write(SyncConnection)]
        meta, quote = SyncConnection._meta, connection.ops.quote_name
        expires = meta.get_field("lease_expires_at")
        sql = (
            f"UPDATE {quote(meta.db_table)} SET {quote(str(expires.column))} = %s "
            f"WHERE {quote(str(meta.get_field('alias').column))} = %s "
            f"AND {quote(str(meta.get_field('lease_owner').column))} = %s"
        )
        with connection.cursor() as cursor:
            cursor.execute(
                sql, [expires.get_db_prep_save(self._expiry(), connection), self.alias, self.owner]
            )
            return cursor.rowcount

    def release(self) -> None:
        self.stop_heartbeat()
        SyncConnection.objects.filter(alias=self.alias, lease_owner=self.owner).update(
            lease_owner="", lease_expires_at=None
        )

    @contextlib.contextmanager
    def atomic(self) -> Iterator[None]:
        """A transaction that first checks (and renews) the lease."""
        with transaction.atomic():
            self.renew()
            yield

    # --- Heartbeat ---------------------------------------------------------------

    def start_heartbeat(self) -> None:
        """Renew the lease from a thread while the run lives.

        Not started inside an outer transaction (a test's): its own database connection
        could not see the lease row, and on SQLite it would wait on the outer write lock.
        Such runs renew at every commit only.
        """
        if default_connection.in_atomic_block or self._heartbeat is not None:
            return
        self._stop.clear()
        self._heartbeat = threading.Thread(target=self._beat, name=f"crmsync-lease-{self.alias}", daemon=True)
        self._heartbeat.start()

    def stop_heartbeat(self) -> None:
        if self._heartbeat is not None:
            self._stop.set()
            self._heartbeat.join()
            self._heartbeat = None

    def _beat(self) -> None:
        interval = max(0.5, app_settings.LEASE_SECONDS / 3)
        try:
            while not self._stop.wait(interval):
                if self._extend() != 1:
                    self.lost = True
                    return
        except Exception:  # a database hiccup: the next commit's renewal decides
            logger.warning("lease heartbeat of %s failed", self.alias, exc_info=True)
        finally:
            connections.close_all()

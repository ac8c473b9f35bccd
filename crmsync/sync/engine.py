"""The sync cycle of one connection (DESIGN §3).

``SyncEngine(alias).run()`` is one cycle:

1. take the connection's lease (a busy connection is skipped);
2. pull each two-way entity (contacts, then deals): remote changes since the
   watermark, merged field by field (``pull``, ``apply``, ``merge``);
3. push the outbox (contacts, deals, then activities): one request per changed record
   carrying all its changed fields (``push``);
4. record the run and release the lease.

A run is time-boxed and resumes where it stopped. No database transaction spans an
HTTP request; every transaction that writes checks the lease first (``lease``).
"""

import logging

from django.utils import timezone

from ..choices import RunStatus
from ..exceptions import AdapterError, LeaseLost, RateLimitDeferred
from ..models import SyncConnection, SyncRun
from ..registry import connections
from .apply import LocalChangedMeanwhile, merge_linked
from .context import RunContext
from .lease import Lease
from .pull import pull
from .push import push
from .quarantine import quarantined_count
from .resolution import Resolution, resolve_conflict

logger = logging.getLogger(__name__)
PULL_ORDER = ("contact", "deal")
PUSH_ORDER = ("contact", "deal", "activity")

__all__ = ["LocalChangedMeanwhile", "Resolution", "SyncEngine", "resolve_conflict"]


class SyncEngine:
    def __init__(self, alias: str, *, time_limit: float | None = None, owner: str | None = None):
        self.alias = alias
        self.adapter = connections[alias]
        self.lease = Lease(alias, owner)
        self.ctx = RunContext.make(alias, self.adapter, self.lease, time_limit)

    @property
    def owner(self) -> str:
        return self.lease.owner

    def acquire_lease(self) -> bool:
        return self.lease.acquire()

    def run(self) -> SyncRun:
        """One cycle; returns its SyncRun (status ``skipped`` when the lease is busy)."""
        if not self.lease.acquire():
            logger.info("sync %s skipped: another run holds the lease", self.alias)
            now = timezone.now()
            return SyncRun.objects.create(
                connection=self.alias, status=RunStatus.SKIPPED, started_at=now, finished_at=now
            )
        run = SyncRun.objects.create(connection=self.alias)
        requests_before = self.adapter.requests_sent
        status: str = RunStatus.FAILED
        self.lease.start_heartbeat()
        try:
            self.adapter.reload_state()  # what other processes stored (a schema read again)
            held = self.adapter.deferred_until()
            if held is not None:
                # DESIGN §7: no run sends a request before the time the CRM named.
                raise RateLimitDeferred("The CRM asked to wait", until=held, alias=self.alias)
            self.cycle()
            status = self.outcome()
        except RateLimitDeferred as err:
            logger.info("sync %s deferred until %s: %s", self.alias, err.until, err)
            self.ctx.errors.append(f"Deferred until {err.until:%Y-%m-%d %H:%M:%S} UTC: {err}")
            status = RunStatus.DEFERRED
        except (AdapterError, LeaseLost) as err:
            self.ctx.error(str(err))
        except Exception as err:
            self.ctx.error(f"{type(err).__name__}: {err}")
            raise
        finally:
            self.lease.stop_heartbeat()
            self.record(run, status, self.adapter.requests_sent - requests_before)
            self.lease.release()
        return run

    def cycle(self) -> None:
        """Pull, then push, each entity the adapter syncs, while time remains."""
        ctx = self.ctx
        for entity in PULL_ORDER:
            if entity in self.adapter.entities and not ctx.out_of_time():
                pull(ctx, entity)
        for entity in PUSH_ORDER:
            if entity in self.adapter.entities and not ctx.out_of_time():
                push(ctx, entity)

    def outcome(self) -> str:
        if self.ctx.stats["errors"]:
            return RunStatus.FAILED
        return RunStatus.PARTIAL if self.ctx.partial else RunStatus.SUCCESS

    def record(self, run: SyncRun, status: str, requests: int) -> None:
        """Save the run's counts and the connection's last error and success."""
        run.status = status
        for key, value in self.ctx.stats.items():
            setattr(run, key, value)
        run.quarantined = quarantined_count(self.alias)
        run.requests = requests
        run.error_summary = "\n".join(self.ctx.errors[:50])
        run.finished_at = timezone.now()
        run.save()
        connection_fields: dict[str, object] = {"last_error": run.error_summary}
        if self.adapter.clock_offset is not None:
            connection_fields["clock_offset"] = self.adapter.clock_offset.total_seconds()
        if run.status in (RunStatus.SUCCESS, RunStatus.PARTIAL):
            connection_fields["last_success_at"] = run.finished_at
        SyncConnection.objects.filter(alias=self.alias).update(**connection_fields)

    def merge_linked(self, entity, record, link, instance, **kwargs) -> None:
        """Merge one linked record now (for tests and tools holding the lease)."""
        merge_linked(self.ctx, entity, record, link, instance, **kwargs)

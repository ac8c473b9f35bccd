"""What one run of one connection carries between its steps: the adapter, the lease,
the deadline, the counts and the errors. The steps (pull, apply, push) share it."""

import dataclasses
import logging
import time

from ..adapters.base import CRMAdapter
from ..choices import Owner
from ..conf import app_settings
from ..models import SyncRun
from .lease import Lease
from .ownership import owners

logger = logging.getLogger("crmsync.sync")

# The longest error message a run logs and keeps in its summary: one may quote a huge
# remote value (a 5,000-character title).
MESSAGE_LIMIT = 500


def shorten(message: str, limit: int = MESSAGE_LIMIT) -> str:
    """``message`` cut to ``limit`` characters, marked with an ellipsis when cut."""
    return message if len(message) <= limit else message[: limit - 1] + "…"


@dataclasses.dataclass
class RunContext:
    alias: str
    adapter: CRMAdapter
    lease: Lease
    deadline: float
    stats: dict = dataclasses.field(default_factory=lambda: dict.fromkeys(SyncRun.COUNTS, 0))
    errors: list[str] = dataclasses.field(default_factory=list)
    partial: bool = False
    _owners: dict = dataclasses.field(default_factory=dict)
    _blocked: dict = dataclasses.field(default_factory=dict)
    # When the pull of each entity began in this run (engine-made records after it are
    # not created remotely until the next pull has had the chance to match them).
    pull_started: dict = dataclasses.field(default_factory=dict)
    # {entity: {field: source}} the links' bases were agreed with (see sources.py).
    sources: dict = dataclasses.field(default_factory=dict)

    def atomic(self):
        """A transaction that first checks (and renews) the lease."""
        return self.lease.atomic()

    def out_of_time(self) -> bool:
        if time.monotonic() >= self.deadline:
            self.partial = True
        return self.partial

    def owners(self, entity: str) -> dict[str, Owner]:
        if entity not in self._owners:
            self._owners[entity] = owners(self.alias, entity)
        return self._owners[entity]

    def blocked_fields(self, entity: str) -> dict[str, str]:
        """{field: why} the adapter cannot sync now (schema drift): skipped both ways."""
        if entity not in self._blocked:
            self._blocked[entity] = dict(self.adapter.blocked_fields(entity))
        return self._blocked[entity]

    def forget_blocked(self, entity: str) -> None:
        """The adapter found drift mid-run: ask it again next time."""
        self._blocked.pop(entity, None)

    def error(self, message: str) -> None:
        """Count an error of this run; the message is logged and kept in the run's summary
        (cut at MESSAGE_LIMIT characters)."""
        message = shorten(message)
        logger.warning("sync %s: %s", self.alias, message)
        self.errors.append(message)
        self.stats["errors"] += 1

    @staticmethod
    def make(alias: str, adapter: CRMAdapter, lease: Lease, time_limit: float | None) -> "RunContext":
        limit = app_settings.RUN_TIME_LIMIT if time_limit is None else time_limit
        return RunContext(alias, adapter, lease, time.monotonic() + limit)

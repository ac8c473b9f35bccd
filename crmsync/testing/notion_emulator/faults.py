"""Faults and limits: injected errors and delays, rate limits answered 429 with
``Retry-After`` and ``additional_data.rate_limit_reason``, and the request log tests count.

Notion's current request-limit page (developers.notion.com/reference/request-limits)
describes a per-connection budget per 60-second window (Retry-After at most 60 s), a
separate per-workspace limit shared by every connection (Retry-After may exceed a
minute), and says to handle 529 like 429. The plan numbers are not public: configure
them with ``set_rate_limit``.
"""

import dataclasses
import math
import time
from collections import Counter

from .store import Mixin, NotionError


@dataclasses.dataclass
class Fault:
    """Answer the next ``count`` matching requests with ``status``.

    ``after``: apply the request first (a "ghost write"), then answer the error.
    ``delay``: wait this long before answering (longer than the client's timeout
    makes a timeout); with ``status=None`` the normal answer follows the delay.
    """

    count: int = 1
    status: int | None = 500
    method: str | None = None
    endpoint: str | None = None
    after: bool = False
    delay: float = 0.0
    retry_after: int | None = None
    skip: int = 0  # let this many matching requests through first
    # additional_data.rate_limit_reason of a 429 (Notion: "public_api_request_rate_limit"
    # for the connection's budget, "public_api_space_request_rate_limit" for the workspace's).
    reason: str | None = None

    def matches(self, method, endpoint):
        return (self.method in (None, method)) and (self.endpoint in (None, endpoint))


@dataclasses.dataclass
class RequestLog:
    at: float
    method: str
    endpoint: str
    path: str
    status: int
    returned: int = 0  # results in a list answer


class TokenBucket:
    def __init__(self, rate: float, burst: float | None = None):
        self.rate, self.capacity = rate, burst or rate
        self.tokens, self.updated = self.capacity, time.monotonic()

    def take(self) -> float:
        """0 when a token was taken, else the seconds until one is available."""
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class WindowBudget:
    """A fixed budget of requests per window (Notion: per connection per 60 s, and per
    workspace); past it, the seconds until the window resets."""

    def __init__(self, limit: int, window: float = 60.0, *, clock=time.monotonic):
        self.limit, self.window, self.clock = int(limit), float(window), clock
        self.started, self.used = clock(), 0

    def take(self) -> float:
        now = self.clock()
        if now - self.started >= self.window:
            self.started, self.used = now, 0
        if self.used < self.limit:
            self.used += 1
            return 0.0
        return self.started + self.window - now


CONNECTION_LIMIT = "public_api_request_rate_limit"
WORKSPACE_LIMIT = "public_api_space_request_rate_limit"
RATE_LIMITED = "You have been rate limited. Please try again in a few minutes."


class FaultsMixin(Mixin):
    def set_rate_limit(
        self,
        requests_per_second: float | None,
        burst: float | None = None,
        *,
        per_window: int | None = None,
        workspace_per_window: int | None = None,
        window: float = 60.0,
        workspace_window: float = 60.0,
    ) -> None:
        """Answer 429 ``rate_limited`` with ``Retry-After`` past these limits (None: no limit).

        ``requests_per_second``/``burst``: a token bucket (the older documented "average
        of three requests per second"); ``per_window``: each token's (connection's) budget
        per ``window`` seconds; ``workspace_per_window``: one budget shared by every token
        per ``workspace_window`` seconds (make it longer than 60 for a Retry-After over a
        minute). A 429 carries the limit hit in ``additional_data.rate_limit_reason``.
        """
        with self.lock:
            self.bucket = TokenBucket(requests_per_second, burst) if requests_per_second else None
            self.connection_window = (per_window, window) if per_window else None
            self.budgets = {}  # "token:<token>" per connection, and "workspace"
            if workspace_per_window:
                self.budgets["workspace"] = WindowBudget(workspace_per_window, workspace_window)

    def _take_rate_limits(self, token: str) -> None:
        """Spend one request of every limit, or raise the 429 of the first one exceeded."""
        if self.bucket:
            wait = self.bucket.take()
            if wait:
                self._rate_limited(wait, CONNECTION_LIMIT)
        if self.connection_window:
            per_token = self.budgets.get(f"token:{token}")
            if per_token is None:
                per_token = self.budgets[f"token:{token}"] = WindowBudget(*self.connection_window)
            wait = per_token.take()
            if wait:
                self._rate_limited(wait, CONNECTION_LIMIT)
        if "workspace" in self.budgets:
            wait = self.budgets["workspace"].take()
            if wait:
                self._rate_limited(wait, WORKSPACE_LIMIT)

    def _rate_limited(self, wait: float, reason: str):
        raise NotionError(
            429,
            RATE_LIMITED,
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
            additional_data={"rate_limit_reason": reason},
        )

    def fail_next(self, count: int = 1, status: int | None = 500, **match) -> Fault:
        """Inject a fault into the next ``count`` matching requests (see ``Fault``)."""
        fault = Fault(count=count, status=status, **match)
        with self.lock:
            self.faults.append(fault)
        return fault

    def throttle_next(
        self, count: int = 1, retry_after: int = 1, reason: str | None = CONNECTION_LIMIT, **match
    ) -> Fault:
        """Answer the next ``count`` matching requests 429 with this ``Retry-After`` (any
        length) and ``additional_data.rate_limit_reason`` (``WORKSPACE_LIMIT`` for the
        per-workspace limit)."""
        return self.fail_next(count, 429, retry_after=retry_after, reason=reason, **match)

    def count(self, endpoint: str | None = None, method: str | None = None, status: int | None = None) -> int:
        with self.lock:
            return sum(
                1
                for log in self.requests
                if endpoint in (None, log.endpoint)
                and method in (None, log.method)
                and status in (None, log.status)
            )

    def counts(self) -> Counter:
        with self.lock:
            return Counter(log.endpoint for log in self.requests)

    def writes(self) -> int:
        return self.count("pages.create") + self.count("pages.update")

    def reset_counters(self) -> None:
        with self.lock:
            self.requests.clear()

    def _raise_fault(self, fault):
        headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
        messages = {
            429: RATE_LIMITED,
            503: "Notion is unavailable, please try again later.",
            529: "Notion is overloaded, please try again later.",
        }
        extra = {"rate_limit_reason": fault.reason} if fault.status == 429 and fault.reason else None
        raise NotionError(
            fault.status,
            messages.get(fault.status, "Unexpected error."),
            headers=headers,
            additional_data=extra,
        )

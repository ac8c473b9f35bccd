"""A request budget shared by every process using one connection.

GCRA (the "generic cell rate algorithm", a token bucket kept as one number): the
row holds the theoretical arrival time (TAT) of the next request. A caller reserves
a slot with a compare-and-swap UPDATE (row count checked, so it works on SQLite,
where ``select_for_update`` does nothing), commits, then sleeps until its slot. No
transaction is held while waiting or while the request is in flight.
"""

import time

from django.db import IntegrityError, transaction


class RateBudget:
    def __init__(self, key: str, rate: float, burst: int = 1, *, sleep=time.sleep, clock=time.time):
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.key, self.rate, self.burst = key, rate, max(1, int(burst))
        self.sleep, self.clock = sleep, clock

    def reserve(self) -> float:
        """Reserve the next slot; returns the seconds to wait before sending."""
        from ..models import RateBudget as Row

        interval = 1.0 / self.rate
        tolerance = (self.burst - 1) * interval
        for _ in range(1000):
            stored = Row.objects.filter(key=self.key).values_list("tat", flat=True).first()
            if stored is None:
                try:
                    with transaction.atomic():
                        Row.objects.create(key=self.key, tat=0.0)
                except IntegrityError:
                    pass
                continue
            now = self.clock()
            tat = max(stored, now)
            if Row.objects.filter(key=self.key, tat=stored).update(tat=tat + interval):
                return max(0.0, tat - tolerance - now)
        raise RuntimeError(f"could not reserve a request slot for {self.key!r}")

    def acquire(self) -> float:
        """Wait for the next slot; returns the seconds waited."""
        wait = self.reserve()
        if wait:
            self.sleep(wait)
        return wait

    def hold_off(self, seconds: float) -> None:
        """After a 429: no other process sends on this budget for ``seconds``.

        The caller sleeps ``seconds`` itself, so its own next slot is free by then.
        """
        from ..models import RateBudget as Row

        until = self.clock() + seconds
        Row.objects.filter(key=self.key, tat__lt=until).update(tat=until)

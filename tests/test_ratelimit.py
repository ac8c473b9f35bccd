"""The shared request budget (GCRA in one database row), on the real database."""

import threading

import pytest
from django.db import connection

from crmsync.adapters.ratelimit import RateBudget
from crmsync.models import RateBudget as Row

WAYS = pytest.mark.parametrize(
    "single_statement", [True, False], ids=["update-returning", "compare-and-swap"]
)


class Clock:
    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now


def budget(single_statement, clock, rate=10.0, burst=1, key="notion:test"):
    made = RateBudget(key, rate, burst, clock=clock, sleep=lambda seconds: None)
    made.single_statement = single_statement
    return made


@WAYS
@pytest.mark.django_db
def test_slots_are_spaced_by_the_rate_and_idle_time_is_not_banked(single_statement):
    clock = Clock()
    first = budget(single_statement, clock)
    waits = [first.reserve() for _ in range(4)]
    assert waits == pytest.approx([0.0, 0.1, 0.2, 0.3])
    clock.now += 60  # a quiet minute does not buy a burst later
    assert [first.reserve() for _ in range(2)] == pytest.approx([0.0, 0.1])
    assert Row.objects.get(key="notion:test").tat == pytest.approx(1060.2)


@WAYS
@pytest.mark.django_db
def test_burst_lets_that_many_go_at_once(single_statement):
    clock = Clock()
    bursty = budget(single_statement, clock, rate=10, burst=3)
    assert [bursty.reserve() for _ in range(5)] == pytest.approx([0.0, 0.0, 0.0, 0.1, 0.2])


@WAYS
@pytest.mark.django_db
def test_budgets_of_one_key_share_slots_and_other_keys_do_not(single_statement):
    clock = Clock()
    one, two = budget(single_statement, clock), budget(single_statement, clock)
    other = budget(single_statement, clock, key="notion:other")
    assert [one.reserve(), two.reserve(), one.reserve()] == pytest.approx([0.0, 0.1, 0.2])
    assert other.reserve() == 0.0


@WAYS
@pytest.mark.django_db
def test_hold_off_after_a_429_delays_every_caller(single_statement):
    clock = Clock()
    first = budget(single_statement, clock)
    first.reserve()
    first.hold_off(5)
    assert budget(single_statement, clock).reserve() == pytest.approx(5.0)


@WAYS
@pytest.mark.parametrize("rate", [10, 100], ids=["a-slot-per-claim", "ten-slots-per-claim"])
@pytest.mark.django_db(transaction=True)
def test_concurrent_callers_never_get_the_same_slot(single_statement, rate):
    clock, waits, errors = Clock(), [], []

    def caller():
        try:
            mine = budget(single_statement, clock, rate=rate)
            waits.extend(mine.reserve() for _ in range(25))
        except Exception as err:  # reported below, with the thread's error
            errors.append(err)
        finally:
            connection.close()

    threads = [threading.Thread(target=caller) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    slots = sorted(round(wait * rate) for wait in waits)
    assert all(wait == pytest.approx(slot / rate) for wait, slot in zip(sorted(waits), slots, strict=True))
    if rate == 10:
        assert slots == list(range(100))  # one claim per request: no slot unsent
    else:
        assert len(set(slots)) == 100 and slots[-1] < 120  # each caller left at most 5 unsent


@WAYS
@pytest.mark.django_db
def test_a_claim_covers_the_next_tenth_of_a_second_in_one_statement(single_statement):
    """Above 20 requests per second one claim per request cost more CPU than the
    request (issue 15); below, each request claims its own slot."""
    from django.test.utils import CaptureQueriesContext

    clock = Clock()
    fast, slow = (
        budget(single_statement, clock, rate=1000),
        budget(single_statement, clock, key="notion:slow"),
    )
    fast.reserve(), slow.reserve()
    with CaptureQueriesContext(connection) as captured:
        waits = [fast.reserve() for _ in range(99)]
    assert waits == pytest.approx([i / 1000 for i in range(1, 100)])
    assert len(captured) == 0
    with CaptureQueriesContext(connection) as captured:
        assert fast.reserve() == pytest.approx(0.1)  # the next claim
        assert slow.reserve() == pytest.approx(0.1)
    assert len([q for q in captured.captured_queries if "UPDATE" in q["sql"]]) == 2
    assert Row.objects.get(key="notion:test").tat == pytest.approx(1000.2)


@WAYS
@pytest.mark.django_db
def test_claimed_slots_are_dropped_after_a_429_and_when_missed(single_statement):
    clock = Clock()
    first, other = budget(single_statement, clock, rate=100), budget(single_statement, clock, rate=100)
    assert first.reserve() == 0.0  # claims 1000.00 to 1000.09
    first.hold_off(5)
    assert first.reserve() == pytest.approx(5.0)  # not 1000.01: Notion asked to wait
    clock.now = 1010.0  # 1005.01 to 1005.09 were missed (a paused process)
    assert other.reserve() == 0.0  # claims 1010.00 to 1010.09
    assert first.reserve() == pytest.approx(0.1)  # fresh: never sent late onto the others'


def test_rate_must_be_positive():
    with pytest.raises(ValueError, match="rate must be positive"):
        RateBudget("notion:test", 0)


@pytest.mark.django_db(transaction=True)
def test_a_claim_on_postgresql_does_not_wait_for_the_disk_nor_change_the_callers_transaction():
    """A commit per request that waits for the write-ahead log cost more CPU than the
    request (issue 15); the budget row may lose a fraction of a second in a crash."""
    from django.db import transaction
    from django.test.utils import CaptureQueriesContext

    nondurable = "set_config('synchronous_commit', 'off', true)"
    clock = Clock()
    with CaptureQueriesContext(connection) as captured:
        budget(True, clock).reserve()
    claims = [q["sql"] for q in captured.captured_queries if "RETURNING" in q["sql"]]
    assert claims and (nondurable in claims[-1]) == (connection.vendor == "postgresql")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            assert cursor.fetchone()[0] == "on"  # only that statement's own commit
    with transaction.atomic(), CaptureQueriesContext(connection) as inside:
        assert budget(True, clock, key="notion:other").reserve() == 0.0
    assert all(nondurable not in q["sql"] for q in inside.captured_queries)


@WAYS
@pytest.mark.django_db
def test_a_caller_that_wakes_long_after_its_slot_takes_a_fresh_one(single_statement):
    """A process stopped while it waited sent on its old slot, then on its next: two
    requests milliseconds apart, rate + 2 in one second (adversarial pass 4)."""
    clock = Clock()
    pauses = [0.9]  # the first sleep overruns by 0.9 s (SIGSTOP, a starved core)

    def sleep(seconds):
        clock.now += seconds + (pauses.pop() if pauses else 0.0)

    other = budget(single_statement, clock, rate=4)
    paused = RateBudget("notion:test", 4, sleep=sleep, clock=clock)
    paused.single_statement = single_statement
    other.reserve()  # slot 1000.0: the paused caller's is 1000.25
    assert paused.acquire() == pytest.approx(0.25 + 0.0)  # woke at 1001.15: slot 1001.15 taken fresh
    assert Row.objects.get(key="notion:test").tat == pytest.approx(1001.4)
    assert paused.acquire() == pytest.approx(0.25)  # the next one interval later, not at once


@WAYS
@pytest.mark.django_db
def test_a_slot_claimed_before_another_process_got_a_429_waits_out_its_hold(single_statement):
    """Adversarial pass (issue 15): a process asleep on its slot sent it 0.33 s into the
    Retry-After another process had been given."""
    clock, sleeps = Clock(), []
    other = budget(single_statement, clock, rate=3)

    def sleep(seconds):
        if not sleeps:  # while the first slot waits, the other process gets a 429
            other.hold_off(5)
        sleeps.append(seconds)
        clock.now += seconds

    waiting = RateBudget("notion:test", 3, sleep=sleep, clock=clock)
    waiting.single_statement = single_statement
    other.reserve()  # slot 1000.0: the waiting process's is 1000.33
    assert waiting.acquire() == pytest.approx(5.0)
    assert clock.now == pytest.approx(1005.0)  # sent when the hold ended, not at 1000.33


@WAYS
@pytest.mark.django_db
def test_slots_claimed_together_stop_within_50_ms_of_another_process_429(single_statement):
    clock = Clock()

    def sleep(seconds):
        clock.now += seconds

    other = budget(single_statement, clock, rate=100)
    sender = RateBudget("notion:test", 100, sleep=sleep, clock=clock)
    sender.single_statement = single_statement
    assert sender.acquire() == 0.0  # claims 1000.00 to 1000.09
    other.hold_off(5)  # at 1000.00
    assert sender.acquire() == pytest.approx(0.01)  # the hold not read yet (within 50 ms)
    clock.now = 1000.06
    assert sender.acquire() == pytest.approx(4.94)  # read now: waits the hold out
    assert clock.now == pytest.approx(1005.0)

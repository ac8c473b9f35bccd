"""The shared request budget (GCRA in one database row), on the real database."""

import threading

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from crmsync.adapters.ratelimit import MAX_BLOCK, RateBudget, block_for
from crmsync.models import RateBudget as Row

WAYS = pytest.mark.parametrize(
    "single_statement", [True, False], ids=["update-returning", "compare-and-swap"]
)


class Clock:
    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now


def budget(single_statement, clock, rate=10.0, burst=1, key="notion:test", block=1):
    made = RateBudget(key, rate, burst, block=block, clock=clock, sleep=lambda seconds: None)
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
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("block", [1, 4])
def test_concurrent_callers_never_get_the_same_slot(single_statement, block):
    clock, waits, errors = Clock(), [], []

    def caller():
        try:
            mine = budget(single_statement, clock, rate=100, block=block)
            waits.extend(mine.reserve() for _ in range(24))  # whole blocks
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
    assert sorted(round(wait, 6) for wait in waits) == [round(i / 100, 6) for i in range(96)]


def claims(captured):
    return [q for q in captured.captured_queries if q["sql"].startswith(("UPDATE", "WITH"))]


@WAYS
@pytest.mark.django_db
def test_a_block_of_slots_costs_one_statement_and_keeps_the_spacing(single_statement):
    """One claim per request was a commit per request: on PostgreSQL it cost more CPU than
    the request itself (issue 15)."""
    clock = Clock()
    blocky = budget(single_statement, clock, block=5)
    Row.objects.create(key="notion:test", tat=0.0)
    with CaptureQueriesContext(connection) as captured:
        waits = [blocky.reserve() for _ in range(12)]
    assert waits == pytest.approx([i / 10 for i in range(12)])
    assert len(claims(captured)) == 3  # slots 0-4, 5-9, 10-14
    assert Row.objects.get(key="notion:test").tat == pytest.approx(1001.5)


@WAYS
@pytest.mark.django_db
def test_another_process_gets_its_slots_after_a_block(single_statement):
    clock = Clock()
    one, two = budget(single_statement, clock, block=3), budget(single_statement, clock, block=3)
    assert [one.reserve(), two.reserve(), one.reserve(), two.reserve()] == pytest.approx([0.0, 0.3, 0.1, 0.4])


@WAYS
@pytest.mark.django_db
def test_slots_a_slow_caller_missed_are_skipped_not_sent_in_a_burst(single_statement):
    """A slot is used at most one interval late: sent later, it would crowd the slots the
    next block gave another process."""
    clock = Clock()
    blocky = budget(single_statement, clock, block=10)
    assert blocky.reserve() == 0.0  # slot 1000.0
    clock.now += 0.35  # slots 1000.1 and 1000.2 missed; 1000.3 is within one interval
    assert blocky.reserve() == 0.0
    assert blocky.reserve() == pytest.approx(0.05)  # slot 1000.4, not at once
    clock.now += 5  # every slot left is seconds old: a new block at 1005.35
    assert [blocky.reserve() for _ in range(3)] == pytest.approx([0.0, 0.1, 0.2])
    assert Row.objects.get(key="notion:test").tat == pytest.approx(1006.35)


@WAYS
@pytest.mark.django_db
def test_hold_off_drops_the_slots_this_process_still_holds(single_statement):
    clock = Clock()
    blocky = budget(single_statement, clock, block=10)
    blocky.reserve()
    blocky.hold_off(5)
    assert blocky.reserve() == pytest.approx(5.0)


def test_a_block_is_a_seconds_worth_of_slots_within_bounds():
    assert [block_for(rate) for rate in (0.2, 1, 3, 10.5, 1000)] == [1, 1, 3, 10, MAX_BLOCK]
    assert RateBudget("k", 3).block == 3 and RateBudget("k", 3, block=1).block == 1


def test_rate_must_be_positive():
    with pytest.raises(ValueError, match="rate must be positive"):
        RateBudget("notion:test", 0)


@pytest.mark.django_db(transaction=True)
def test_a_claim_on_postgresql_does_not_wait_for_the_disk_nor_change_the_callers_transaction():
    nondurable = "set_config('synchronous_commit', 'off', true)"
    clock = Clock()
    with CaptureQueriesContext(connection) as captured:
        budget(True, clock).reserve()
    assert (nondurable in claims(captured)[-1]["sql"]) == (connection.vendor == "postgresql")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            assert cursor.fetchone()[0] == "on"  # only that statement's own commit
    from django.db import transaction

    with transaction.atomic(), CaptureQueriesContext(connection) as inside:
        budget(True, clock, key="notion:other").reserve()
    assert claims(inside) and all(nondurable not in q["sql"] for q in inside.captured_queries)

"""P3 (the pull never skips an edit), P4 (quiescence), P6 (no silent conflicts),
P7 (the rate budget), P8 (poison records are isolated), P9 (missing is not deleted)."""

import datetime as dt

import pytest
from django.utils import timezone

from crmsync.choices import RunStatus
from crmsync.models import Conflict, Opportunity, OutboxEntry, SyncLink
from crmsync.sync.engine import SyncEngine
from crmsync.testing.pytest_plugin import notion_options

pytestmark = [pytest.mark.heavy, pytest.mark.django_db]
LABELS = {
    "prospecting": "Prospecting",
    "discovery": "Discovery",
    "proposal": "Proposal",
    "negotiation": "Negotiation",
}


def sync():
    return SyncEngine("notion").run()


def page_of(deal):
    return SyncLink.objects.get(local_id=deal.pk).remote_id


def test_p3_edits_in_the_cursors_minute_and_late_visible_edits_are_pulled(
    notion_settings, notion_emulator, rng
):
    minute = timezone.now().replace(second=0, microsecond=0)
    notion_emulator.clock.set(minute + dt.timedelta(seconds=rng.randrange(0, 30)))
    deals = [Opportunity.objects.create(name=f"Deal {i}") for i in range(6)]
    sync()
    # Edits later in the same minute as the watermark (their last_edited_time equals it).
    notion_emulator.clock.set(minute + dt.timedelta(seconds=rng.randrange(31, 60)))
    same_minute = rng.sample(deals, 3)
    for deal in same_minute:
        notion_emulator.human_edit(page_of(deal), {"Notes": f"same minute {deal.name}"})
    # An edit that only becomes visible to queries after a sync has read past it (< 60 s late).
    late = next(d for d in deals if d not in same_minute)
    notion_emulator.human_edit(page_of(late), {"Notes": "visible late"})
    notion_emulator.hide(page_of(late))
    notion_emulator.clock.advance(30)
    sync()
    notion_emulator.hide(page_of(late), hidden=False)
    sync()
    for deal in same_minute:
        deal.refresh_from_db()
        assert deal.notes == f"same minute {deal.name}"
    late.refresh_from_db()
    assert late.notes == "visible late"


def test_p4_two_idle_runs_write_nothing_on_either_side(notion_settings, notion_emulator, rng):
    for index in range(rng.randrange(5, 15)):
        Opportunity.objects.create(name=f"Deal {index}", probability=rng.randrange(0, 101), tags=["a", "b"])
    page = notion_emulator.human_create(
        notion_emulator.ids["deal_source"], {"Name": "Remote", "Tags": ["x", "y"]}
    )
    sync()
    sync()
    versions = dict(Opportunity.objects.values_list("pk", "updated_at"))
    notion_emulator.reset_counters()
    first, second = sync(), sync()
    assert notion_emulator.writes() == 0
    assert dict(Opportunity.objects.values_list("pk", "updated_at")) == versions
    assert first.updated_local == first.updated_remote == second.updated_local == second.updated_remote == 0
    assert page


def test_p6_every_two_sided_change_leaves_a_conflict_row(notion_settings, notion_emulator, rng):
    deals = [Opportunity.objects.create(name=f"Deal {i}", probability=10) for i in range(8)]
    sync()
    expected = set()
    for deal in deals:
        field = rng.choice(["stage", "probability", "notes"])
        if field == "stage":
            deal.stage, remote = "discovery", {"Stage": "Negotiation"}
        elif field == "probability":
            deal.probability, remote = 20, {"Probability": 30}
        else:
            deal.notes, remote = "local note", {"Notes": "remote note"}
        deal.save()
        notion_emulator.human_edit(page_of(deal), remote)
        expected.add((deal.pk, field))
    sync()
    rows = {(c.object_id, c.field): c for c in Conflict.objects.all()}
    assert set(rows) == expected
    bases = {"stage": "prospecting", "probability": "10", "notes": None}
    for conflict in rows.values():
        assert conflict.rule and conflict.winner and conflict.reason
        assert conflict.local_value != conflict.remote_value
        assert conflict.base_value == bases[conflict.field]


@pytest.mark.slow
def test_p7_never_over_the_budget_and_waits_out_retry_after(settings, notion_emulator):
    rate = 10
    options = notion_options(notion_emulator, requests_per_second=rate, activities_database_id=None)
    settings.CRMSYNC = {"CONNECTIONS": {"notion": {"ADAPTER": "notion", "OPTIONS": options}}}
    notion_emulator.set_rate_limit(rate)
    for index in range(30):
        Opportunity.objects.create(name=f"Deal {index}")
    run = sync()
    assert run.status == RunStatus.SUCCESS
    times = sorted(log.at for log in notion_emulator.requests)
    assert notion_emulator.count(status=429) == 0
    worst = max(sum(1 for t in times if start <= t < start + 1.0) for start in times)
    assert worst <= rate + 1  # budget (burst 1)
    # A forced 429 with Retry-After: the next attempt waits at least that long.
    notion_emulator.reset_counters()
    notion_emulator.throttle_next(retry_after=2, endpoint="data_sources.query")
    sync()
    queries = [log for log in notion_emulator.requests if log.endpoint == "data_sources.query"]
    assert queries[0].status == 429 and queries[1].at - queries[0].at >= 2.0


def test_p8_poison_records_are_isolated(notion_settings, notion_emulator, settings):
    settings.CRMSYNC = {**settings.CRMSYNC, "MAX_RECORD_FAILURES": 2}
    good = [Opportunity.objects.create(name=f"Good {i}") for i in range(5)]
    oversized = Opportunity.objects.create(name="Oversized", notes="n" * 200_001)
    comma = Opportunity.objects.create(name="Comma tag")
    Opportunity.objects.filter(pk=comma.pk).update_synced(tags=["a,b"])  # bypasses model validation
    rejected = Opportunity.objects.create(name="Rejected by Notion")
    sync()
    # A remote validation error for one record's update.
    rejected.stage = "discovery"
    rejected.save()
    notion_emulator.fail_next(status=400, endpoint="pages.update")
    for _ in range(3):
        sync()
    assert all(SyncLink.objects.filter(local_id=d.pk).exists() for d in good)
    quarantined = set(OutboxEntry.objects.filter(quarantined=True).values_list("local_id", flat=True))
    assert {oversized.pk, comma.pk} <= quarantined
    final = sync()
    assert final.status == RunStatus.SUCCESS  # quarantined records no longer fail runs
    assert notion_emulator.page_values(page_of(rejected))["Stage"] == "Discovery"  # a one-off 400 retried


def test_p9_missing_is_not_deleted(notion_settings, notion_emulator):
    deals = [Opportunity.objects.create(name=f"Deal {i}") for i in range(120)]
    sync()
    # Permission lost on some pages, and an outage in the middle of paginating.
    for deal in deals[:10]:
        notion_emulator.hide(page_of(deal))
    notion_emulator.clock.advance(120)
    for deal in deals[10:]:
        notion_emulator.human_edit(page_of(deal), {"Notes": "touched"})
    notion_emulator.fail_next(count=6, status=503, endpoint="data_sources.query", skip=2)  # 1 + 5 retries
    failed = sync()
    assert failed.status == RunStatus.FAILED
    sync()
    assert not Opportunity.objects.filter(archived=True).exists()
    notion_emulator.human_edit(page_of(deals[50]), in_trash=True)  # an explicit trash signal
    sync()
    assert list(Opportunity.objects.filter(archived=True)) == [deals[50]]

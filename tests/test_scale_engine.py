"""The engine's idle cost at scale (issue 15): after a local save, the scan for records
the connection has never seen probes the changed records only."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from crmsync.choices import RunStatus
from crmsync.models import Opportunity, OutboxEntry, SyncLink
from crmsync.sync.engine import SyncEngine

pytestmark = pytest.mark.django_db


@pytest.fixture
def fake(settings):
    settings.CRMSYNC = {"CONNECTIONS": {"crm": {"ADAPTER": "fake"}}}
    return "crm"


def run(alias):
    result = SyncEngine(alias).run()
    assert result.status == RunStatus.SUCCESS, result.error_summary
    return result


def scan_queries(captured):
    """The scan's statements: those selecting deals and naming the links table."""
    return [
        q["sql"]
        for q in captured.captured_queries
        if q["sql"].startswith('SELECT "crmsync_opportunity"."id"') and "crmsync_synclink" in q["sql"]
    ]


def test_the_unlinked_scan_after_a_save_reads_no_other_link(fake):
    """NOT IN (SELECT local_id FROM links) read every link of the connection after any
    save (PostgreSQL hashed 100,000 of them in 80 ms); NOT EXISTS probes the unique
    (connection, entity, local_id) index once per changed record."""
    Opportunity.objects.bulk_create([Opportunity(name=f"D{i}") for i in range(5)])
    run(fake)  # the first scan, and the creates
    run(fake)
    Opportunity.objects.bulk_create([Opportunity(name="Bulk")])  # no save(): no outbox entry
    with CaptureQueriesContext(connection) as captured:
        run(fake)
    scans = scan_queries(captured)
    assert scans, [q["sql"] for q in captured.captured_queries]
    for sql in scans:
        assert 'IN (SELECT U0."local_id"' not in sql, sql
        assert "EXISTS" in sql and '"local_id" = ("crmsync_opportunity"."id")' in sql, sql
    # Still found and pushed.
    assert not OutboxEntry.objects.exists()
    assert Opportunity.objects.count() == 6
    assert SyncLink.objects.filter(connection=fake, entity="deal").count() == 6

"""P2: exactly one remote page per local record, through ghost writes and kills."""

import signal

import pytest

from crmsync.models import Opportunity
from crmsync.sync.engine import SyncEngine
from crmsync.testing.pytest_plugin import notion_options
from tests.workers import expire_leases, run_worker

pytestmark = [pytest.mark.heavy, pytest.mark.django_db(transaction=True)]


def pages_per_sync_id(emulator) -> dict:
    counts = {}
    for page in emulator.pages_in(emulator.ids["deal_source"], include_trashed=True):
        key = page["values"]["CRM Sync ID"]
        counts[key] = counts.get(key, 0) + 1
    return counts


def test_ghost_writes_never_duplicate(settings, notion_emulator, rng):
    options = notion_options(notion_emulator, timeout=0.5)
    settings.CRMSYNC = {"CONNECTIONS": {"notion": {"ADAPTER": "notion", "OPTIONS": options}}}
    deals = [Opportunity.objects.create(name=f"Deal {i}") for i in range(12)]
    # Creates that are applied but whose answer is lost: 5xx of every kind, and timeouts.
    for _ in range(6):
        if rng.random() < 0.5:
            notion_emulator.fail_next(
                status=rng.choice([500, 502, 503, 504, 529]),
                endpoint="pages.create",
                after=True,
                skip=rng.randrange(3),
            )
        else:
            notion_emulator.fail_next(status=None, delay=1.0, endpoint="pages.create", skip=rng.randrange(3))
    for _ in range(8):
        SyncEngine("notion").run()
        if len(pages_per_sync_id(notion_emulator)) == len(deals):
            break
    counts = pages_per_sync_id(notion_emulator)
    assert counts == {str(d.pk): 1 for d in deals}


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["push:after-create:1", "push:after-create:5", "pull:before-sync-id:1"])
def test_kills_between_create_and_commit_never_duplicate(crm, notion_emulator, fault):
    deals = [Opportunity.objects.create(name=f"Deal {i}") for i in range(6)]
    for index in range(3):
        notion_emulator.human_create(notion_emulator.ids["deal_source"], {"Name": f"Remote {index}"})
    assert run_worker(notion_emulator, fault).returncode == -signal.SIGKILL
    expire_leases()
    assert run_worker(notion_emulator).returncode == 0
    counts = pages_per_sync_id(notion_emulator)
    assert set(counts.values()) == {1}
    assert sorted(counts) == sorted(str(pk) for pk in Opportunity.objects.values_list("pk", flat=True))
    assert len(counts) == len(deals) + 3

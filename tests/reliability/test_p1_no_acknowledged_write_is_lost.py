"""P1: no acknowledged local write is lost when a worker dies at any step.

A real ``crmsync_sync`` process is SIGKILLed at each fault point of the engine; after the
dead worker's lease expires, clean runs must leave both sides as the rules say."""

import signal

import pytest

from crmsync.models import Opportunity, SyncLink
from tests.workers import expire_leases, run_worker

pytestmark = [pytest.mark.heavy, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

FAULT_POINTS = [
    "pull:page:2",  # mid-pagination (contacts page, then the first deals page)
    "pull:before-sync-id",  # a new local record made from a page, before its sync id is written back
    "push:record:4",  # mid-outbox drain
    "push:before-create:2",  # before a request
    "push:after-create:2",  # after a request, before its commit
    "push:before-update:2",
    "push:after-update:3",
]


@pytest.mark.parametrize("fault", FAULT_POINTS)
def test_killed_worker_loses_no_acknowledged_write(crm, notion_emulator, rng, fault):
    source = notion_emulator.ids["deal_source"]
    deals = [
        Opportunity.objects.create(name=f"Deal {i}", stage="prospecting", probability=10) for i in range(8)
    ]
    assert run_worker(notion_emulator).returncode == 0
    pages = {d.pk: SyncLink.objects.get(local_id=d.pk).remote_id for d in deals}

    local_edits = {}  # deal pk -> (stage, probability) acknowledged by save()
    for deal in rng.sample(deals, 4):
        deal.stage = rng.choice(["qualification", "discovery", "proposal", "negotiation"])
        deal.probability = rng.randrange(0, 101)
        deal.save()
        local_edits[deal.pk] = (deal.stage, deal.probability)
    remote_notes = {}
    for deal in rng.sample(deals, 3):
        note = f"note {rng.randrange(10**6)}"
        notion_emulator.human_edit(pages[deal.pk], {"Notes": note})
        remote_notes[deal.pk] = note
    new_local = [Opportunity.objects.create(name=f"New local {i}") for i in range(3)]
    new_remote = [notion_emulator.human_create(source, {"Name": f"New remote {i}"}) for i in range(3)]

    killed = run_worker(notion_emulator, fault)
    assert killed.returncode == -signal.SIGKILL, (
        f"fault {fault} never reached: {killed.stdout}{killed.stderr}"
    )
    expire_leases()
    for _ in range(2):
        finished = run_worker(notion_emulator)
        assert finished.returncode == 0, finished.stdout + finished.stderr

    remote = {p["id"]: p for p in notion_emulator.pages_in(source)}
    sync_ids = sorted(p["values"]["CRM Sync ID"] for p in remote.values())
    assert sync_ids == sorted(str(pk) for pk in Opportunity.objects.values_list("pk", flat=True)), (
        "one page per deal"
    )
    labels = {
        "qualification": "Qualification",
        "discovery": "Discovery",
        "proposal": "Proposal",
        "negotiation": "Negotiation",
    }
    for pk, (stage, probability) in local_edits.items():
        deal = Opportunity.objects.get(pk=pk)
        assert (deal.stage, deal.probability) == (stage, probability), "local write kept locally"
        values = remote[pages[pk]]["values"]
        assert (values["Stage"], values["Probability"]) == (labels[stage], probability), "local write pushed"
    for pk, note in remote_notes.items():
        assert Opportunity.objects.get(pk=pk).notes == note, "human-owned remote edit pulled"
    assert Opportunity.objects.filter(name__startswith="New remote").count() == len(new_remote)
    assert all(SyncLink.objects.filter(local_id=d.pk).count() == 1 for d in new_local)

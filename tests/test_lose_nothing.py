"""Issue 12, "lose nothing": each sequence that lost an edit, wedged a connection or
wasted requests, over HTTP against the emulator with the real notion-client."""

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.utils import timezone

from crmsync.choices import ConflictStatus, RunStatus
from crmsync.exceptions import MappingError
from crmsync.models import (
    Activity,
    Conflict,
    Contact,
    FieldOwnership,
    Opportunity,
    OutboxEntry,
    QuarantinedPage,
    SyncConnection,
    SyncLink,
)
from crmsync.sync.engine import SyncEngine, resolve_conflict
from crmsync.testing.pytest_plugin import notion_options
from tests.workers import run_worker, start_worker, wait_for

pytestmark = pytest.mark.django_db
MINUTE = dt.timedelta(minutes=1)


@pytest.fixture
def deals_only(settings, notion_emulator):
    options = notion_options(notion_emulator, contacts_database_id=None, activities_database_id=None)
    settings.CRMSYNC = {"CONNECTIONS": {"notion": {"ADAPTER": "notion", "OPTIONS": options}}}
    return settings.CRMSYNC


@pytest.fixture
def frozen(notion_emulator):
    """Notion's clock stopped at a whole minute; tests move it by hand."""
    start = timezone.now().replace(second=0, microsecond=0) + dt.timedelta(seconds=5)
    notion_emulator.clock.set(start)
    return start


def sync(**kwargs):
    return SyncEngine("notion", **kwargs).run()


def clean_sync():
    run = sync()
    assert run.status == RunStatus.SUCCESS, run.error_summary
    return run


def page_of(obj, entity="deal"):
    return SyncLink.objects.get(connection="notion", entity=entity, local_id=obj.pk).remote_id


def deal_source(emulator):
    return emulator.ids["deal_source"]


# 1 -----------------------------------------------------------------------------------


def test_1_a_failed_listing_after_the_trash_query_loses_no_edit(deals_only, notion_emulator, frozen):
    a, b = Opportunity.objects.create(name="A"), Opportunity.objects.create(name="B")
    clean_sync()
    notion_emulator.clock.advance(60)
    notion_emulator.human_edit(page_of(a), {"Notes": "edited at M"})
    notion_emulator.clock.advance(60)
    new_page = notion_emulator.human_create(deal_source(notion_emulator), {"Name": "Made at M+1"})
    notion_emulator.clock.advance(120)
    notion_emulator.human_edit(page_of(b), in_trash=True)
    # The in_trash query answers; the live query fails after every retry.
    notion_emulator.fail_next(count=20, status=503, endpoint="data_sources.query", skip=1)
    assert sync().status == RunStatus.FAILED
    notion_emulator.faults.clear()
    clean_sync()
    a.refresh_from_db()
    b.refresh_from_db()
    assert a.notes == "edited at M"
    assert b.archived
    assert Opportunity.objects.filter(name="Made at M+1").exists()
    assert SyncLink.objects.filter(remote_id=new_page).exists()


# 2 -----------------------------------------------------------------------------------


def test_2_a_first_sync_over_several_runs_misses_no_edit_between_them(deals_only, notion_emulator, frozen):
    source = deal_source(notion_emulator)
    first = notion_emulator.human_create(source, {"Name": "First"})
    notion_emulator.clock.advance(120)
    pages = [notion_emulator.human_create(source, {"Name": f"Page {i}"}) for i in range(149)]
    # The first result page arrives after the run's time limit: it stops after it.
    notion_emulator.fail_next(status=None, delay=0.5, endpoint="data_sources.query")
    assert sync(time_limit=0.3).status == RunStatus.PARTIAL
    assert SyncLink.objects.filter(remote_id=first).exists()  # passed by the first run
    notion_emulator.clock.advance(180)
    notion_emulator.human_edit(first, {"Notes": "edited between the runs"})
    notion_emulator.clock.advance(120)
    notion_emulator.human_edit(pages[-1], {"Notes": "edited later"})
    clean_sync()  # finishes the first sync
    clean_sync()  # the first incremental run
    assert Opportunity.objects.get(name="First").notes == "edited between the runs"
    assert Opportunity.objects.count() == 150


# 3 -----------------------------------------------------------------------------------


def test_3_a_person_edit_after_an_ambiguous_create_is_merged_not_overwritten(
    deals_only, notion_emulator, frozen
):
    deal = Opportunity.objects.create(name="Acme", stage="proposal", probability=40)
    notion_emulator.fail_next(status=502, endpoint="pages.create", after=True)  # applied, answered 502
    assert sync().errors == 1
    page = notion_emulator.pages_in(deal_source(notion_emulator))[0]["id"]
    notion_emulator.clock.advance(180)
    notion_emulator.human_edit(page, {"Stage": "Negotiation", "Probability": 90})
    clean_sync()
    deal.refresh_from_db()
    values = notion_emulator.page_values(page)
    assert (deal.stage, values["Stage"]) == ("negotiation", "Negotiation")  # the person's edit stands
    assert (deal.probability, values["Probability"]) == (40, 40)  # agent-owned: reverted, logged
    assert Conflict.objects.filter(field="probability", object_id=deal.pk).count() == 1


def test_3_a_page_trashed_after_an_ambiguous_create_archives_the_record(deals_only, notion_emulator, frozen):
    deal = Opportunity.objects.create(name="Acme")
    notion_emulator.fail_next(status=502, endpoint="pages.create", after=True)
    sync()
    page = notion_emulator.pages_in(deal_source(notion_emulator))[0]["id"]
    notion_emulator.clock.advance(120)
    notion_emulator.human_edit(page, in_trash=True)
    clean_sync()
    deal.refresh_from_db()
    assert deal.archived
    assert notion_emulator.pages[page]["in_trash"]
    assert len(notion_emulator.pages_in(deal_source(notion_emulator), include_trashed=True)) == 1


# 4 -----------------------------------------------------------------------------------


def test_4_saving_a_stale_instance_keeps_a_pulled_edit(deals_only, notion_emulator, frozen):
    deal = Opportunity.objects.create(name="Acme", stage="proposal")
    clean_sync()
    stale = Opportunity.objects.get(pk=deal.pk)  # loaded before the pull
    notion_emulator.clock.advance(120)
    notion_emulator.human_edit(page_of(deal), {"Stage": "Negotiation"})
    clean_sync()
    stale.qualification = "Budget confirmed"
    stale.save()  # writes only what this instance changed
    clean_sync()
    deal.refresh_from_db()
    values = notion_emulator.page_values(page_of(deal))
    assert (deal.stage, values["Stage"]) == ("negotiation", "Negotiation")
    assert (deal.qualification, values["Qualification"]) == ("Budget confirmed", "Budget confirmed")
    assert not Conflict.objects.exists()


# 5 -----------------------------------------------------------------------------------


def test_5_an_unmapped_value_conflict_closes_when_its_cause_goes(deals_only, notion_emulator, frozen):
    deal = Opportunity.objects.create(name="Acme", stage="proposal")
    clean_sync()
    notion_emulator.clock.advance(60)
    notion_emulator.human_edit(page_of(deal), {"Stage": "On Hold"})
    clean_sync()
    assert Conflict.objects.get(status=ConflictStatus.OPEN).reason.startswith("unmapped value")
    notion_emulator.clock.advance(60)
    notion_emulator.human_edit(page_of(deal), {"Stage": "Negotiation"})
    clean_sync()
    deal.refresh_from_db()
    assert deal.stage == "negotiation"
    assert not Conflict.objects.filter(status=ConflictStatus.OPEN).exists()
    deal.stage = "closed_won"
    deal.save()
    clean_sync()
    assert notion_emulator.page_values(page_of(deal))["Stage"] == "Closed Won"
    assert not OutboxEntry.objects.exists()


def test_5_a_local_edit_over_an_unmapped_value_is_pushed_not_dropped(deals_only, notion_emulator, frozen):
    deal = Opportunity.objects.create(name="Acme", stage="proposal")
    clean_sync()
    notion_emulator.clock.advance(60)
    notion_emulator.human_edit(page_of(deal), {"Stage": "On Hold"})
    clean_sync()
    deal.stage = "closed_won"
    deal.save()
    clean_sync()
    assert notion_emulator.page_values(page_of(deal))["Stage"] == "Closed Won"
    conflict = Conflict.objects.get(field="stage")
    assert conflict.status == ConflictStatus.RESOLVED and "local edit" in conflict.reason


# 7 -----------------------------------------------------------------------------------


def test_7_local_clock_behind_notion_a_later_local_edit_still_wins(deals_only, notion_emulator):
    notion_emulator.clock.advance(120)  # Notion's clock runs 2 minutes ahead of ours
    deal = Opportunity.objects.create(name="Acme", stage="proposal")
    clean_sync()  # measures the offset
    notion_emulator.human_edit(page_of(deal), {"Stage": "Negotiation"})
    deal.stage = "closed_won"  # later, in real time
    deal.save()
    clean_sync()
    deal.refresh_from_db()
    assert deal.stage == "closed_won"
    assert notion_emulator.page_values(page_of(deal))["Stage"] == "Closed Won"
    assert abs(SyncConnection.objects.get().clock_offset - 120) < 2


def test_7_local_clock_ahead_of_notion_a_later_person_edit_wins(deals_only, notion_emulator):
    notion_emulator.clock.advance(-120)  # Notion's clock runs 2 minutes behind ours
    deal = Opportunity.objects.create(name="Acme", stage="proposal")
    clean_sync()
    deal.stage = "closed_won"
    deal.save()
    notion_emulator.clock.advance(90)  # the person edits a minute and a half later
    notion_emulator.human_edit(page_of(deal), {"Stage": "Negotiation"})
    clean_sync()
    deal.refresh_from_db()
    assert deal.stage == "negotiation"
    assert notion_emulator.page_values(page_of(deal))["Stage"] == "Negotiation"


# 8 -----------------------------------------------------------------------------------


def test_8_a_failing_contact_page_never_stops_the_deals(notion_settings, notion_emulator):
    contacts = notion_emulator.ids["contact_source"]
    notion_emulator.human_create(contacts, {"Name": "Ada", "Email": "ada@example.com"})
    notion_emulator.human_create(contacts, {"Name": "Ada (twin)", "Email": "ADA@example.com"})
    notion_emulator.human_create(deal_source(notion_emulator), {"Name": "Acme", "Notes": "bad \x00 byte"})
    runs = [sync() for _ in range(2)]
    assert Contact.objects.count() == 1
    deal = Opportunity.objects.get(name="Acme")  # deals sync although a contact page fails
    assert deal.notes == ""  # the NUL byte is not applied; the rest is
    conflict = Conflict.objects.get(object_id=deal.pk, field="notes")
    assert conflict.reason.startswith("invalid remote value") and conflict.status == ConflictStatus.OPEN
    held = QuarantinedPage.objects.get()
    assert "email" in held.error.lower() or "unique" in held.error.lower(), held.error
    assert all(run.quarantined == 1 for run in runs)
    notion_emulator.human_create(deal_source(notion_emulator), {"Name": "Later"})
    sync()
    assert Opportunity.objects.filter(name="Later").exists()


def test_8_a_converter_error_after_type_drift_quarantines_one_page(deals_only, notion_emulator):
    good = Opportunity.objects.create(name="Good")
    bad = Opportunity.objects.create(name="Bad")
    clean_sync()
    notion_emulator.corrupt(page_of(bad), "Tags", {"id": "t", "type": "multi_select", "multi_select": 7})
    notion_emulator.human_edit(page_of(good), {"Notes": "synced"})
    run = sync()
    good.refresh_from_db()
    assert good.notes == "synced"
    assert run.status == RunStatus.FAILED and run.quarantined == 1
    assert QuarantinedPage.objects.get().remote_id == page_of(bad)


# 9 -----------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_9_a_contact_page_made_during_a_run_is_matched_not_duplicated(notion_emulator, tmp_path):
    contacts = notion_emulator.ids["contact_source"]
    notion_emulator.human_create(deal_source(notion_emulator), {"Name": "Acme", "Contact Email": "bo@x.com"})
    release = tmp_path / "release"
    worker = start_worker(notion_emulator, CRMSYNC_PAUSE=f"pull:start:deal@{release}")
    try:
        wait_for(tmp_path / "release.reached", worker)  # the contacts are pulled
        notion_emulator.human_create(contacts, {"Name": "Bo", "Email": "bo@x.com"})
    finally:
        release.touch()
        worker.communicate(timeout=120)
    assert run_worker(notion_emulator).returncode == 0
    assert run_worker(notion_emulator).returncode == 0
    assert len(notion_emulator.pages_in(contacts)) == 1
    contact = Contact.objects.get()
    assert SyncLink.objects.filter(entity="contact", local_id=contact.pk).count() == 1


def test_9_a_duplicated_page_whose_create_answer_was_lost(deals_only, notion_emulator, frozen):
    deal = Opportunity.objects.create(name="Acme")
    notion_emulator.fail_next(status=502, endpoint="pages.create", after=True)
    sync()
    original = notion_emulator.pages_in(deal_source(notion_emulator))[0]
    notion_emulator.clock.advance(60)
    copy = notion_emulator.human_create(deal_source(notion_emulator), original["values"])  # "Duplicate"
    clean_sync()
    assert page_of(deal) == original["id"]
    twin = Opportunity.objects.exclude(pk=deal.pk).get()
    assert page_of(twin) == copy
    assert notion_emulator.page_values(copy)["CRM Sync ID"] == str(twin.pk)
    assert Conflict.objects.get(object_id=twin.pk).reason.startswith("duplicate sync id")
    clean_sync()


# 10 ----------------------------------------------------------------------------------


def test_10_a_new_page_with_values_the_model_refuses_is_imported_without_them(deals_only, notion_emulator):
    page = notion_emulator.human_create(
        deal_source(notion_emulator),
        {
            "Name": "Odd",
            "Probability": 150,
            "Value": 5e20,
            "Confidence": 0.12345,
            "Contact Email": "not an email",
        },
    )
    sync()
    deal = Opportunity.objects.get()
    assert (deal.probability, deal.value, deal.confidence, deal.contact) == (None, 0, Decimal("0.123"), None)
    assert not Contact.objects.exists()
    held = dict(Conflict.objects.filter(status=ConflictStatus.OPEN).values_list("field", "remote_value"))
    assert held == {"probability": "150", "value": "500000000000000000000", "contact": "not an email"}
    assert not QuarantinedPage.objects.exists()
    deal.full_clean()
    # Nothing it could not take is echoed, and a fix in Notion closes the conflict.
    notion_emulator.human_edit(page, {"Value": 1234.5678})
    sync()
    deal.refresh_from_db()
    assert deal.value == Decimal("1234.57")  # DESIGN §7: stored at the local precision
    assert not Conflict.objects.filter(field="value", status=ConflictStatus.OPEN).exists()
    notion_emulator.reset_counters()
    sync()
    assert notion_emulator.writes() == 0


# 11 ----------------------------------------------------------------------------------


def test_11_a_page_with_only_a_name_costs_one_write_and_no_echo(deals_only, notion_emulator):
    for index in range(5):
        notion_emulator.human_create(deal_source(notion_emulator), {"Name": f"Bare {index}"})
    sync()
    assert notion_emulator.count("pages.update") == 5  # the sync ids
    notion_emulator.reset_counters()
    sync()
    assert notion_emulator.writes() == 0
    assert Opportunity.objects.filter(stage="prospecting").count() == 5


# 12 ----------------------------------------------------------------------------------


def test_12_an_archived_deal_is_not_patched_while_trashed_and_catches_up_on_restore(
    deals_only, notion_emulator
):
    deal = Opportunity.objects.create(name="Acme")
    clean_sync()
    deal.archived = True
    deal.save()
    clean_sync()
    deal.probability = 50
    deal.save()
    notion_emulator.reset_counters()
    clean_sync()
    assert notion_emulator.count("pages.update") == 0
    deal.archived = False
    deal.save()
    clean_sync()
    page = notion_emulator.pages[page_of(deal)]
    assert not page["in_trash"] and notion_emulator.page_values(page["id"])["Probability"] == 50


def test_12_an_activity_of_a_deal_archived_before_it_synced_is_reported(notion_settings, notion_emulator):
    deal = Opportunity.objects.create(name="Never synced", archived=True)
    activity = Activity.objects.create(opportunity=deal, subject="Call", kind="call")
    run = sync()
    entry = OutboxEntry.objects.get(entity="activity", local_id=activity.pk)
    assert entry.quarantined and "archived" in entry.last_error
    assert run.quarantined == 1
    assert sync().errors == 0  # reported once, then held


# 13 ----------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_13_a_live_run_keeps_its_lease_past_lease_seconds(notion_emulator, tmp_path):
    Opportunity.objects.create(name="Acme")
    release = tmp_path / "release"
    worker = start_worker(notion_emulator, CRMSYNC_PAUSE=f"pull:page@{release}", CRMSYNC_LEASE_SECONDS="1")
    try:
        wait_for(tmp_path / "release.reached", worker)
        first = SyncConnection.objects.get().lease_expires_at
        deadline = timezone.now() + dt.timedelta(seconds=20)
        while SyncConnection.objects.get().lease_expires_at <= first + dt.timedelta(seconds=1):
            assert timezone.now() < deadline, "the heartbeat did not renew the lease"
        other = run_worker(notion_emulator)
        assert json.loads(other.stdout)["status"] == "skipped"
    finally:
        release.touch()
        out, err = worker.communicate(timeout=120)
    assert json.loads(out)["status"] == "success", out + err


# 14 ----------------------------------------------------------------------------------


def test_14_take_remote_on_an_auto_resolved_conflict_leaves_no_phantom(deals_only, notion_emulator):
    deal = Opportunity.objects.create(name="Acme", probability=99)
    clean_sync()
    notion_emulator.human_edit(page_of(deal), {"Probability": 25})
    clean_sync()  # agent-owned: reverted, logged
    conflict = Conflict.objects.get(field="probability")
    assert conflict.status == ConflictStatus.AUTO_RESOLVED
    resolve_conflict(conflict, "take_remote")
    clean_sync()
    deal.refresh_from_db()
    assert deal.probability == 25 and notion_emulator.page_values(page_of(deal))["Probability"] == 25
    clean_sync()
    assert Conflict.objects.count() == 1


def test_14_a_resolution_value_must_be_of_the_fields_type(deals_only, notion_emulator):
    FieldOwnership.objects.create(connection="notion", entity="deal", field="name", owner="manual")
    deal = Opportunity.objects.create(name="Acme")
    clean_sync()
    deal.name = "Local"
    deal.save()
    notion_emulator.clock.advance(60)
    notion_emulator.human_edit(page_of(deal), {"Name": "Remote"})
    sync()
    conflict = Conflict.objects.get(field="name", status=ConflictStatus.OPEN)
    with pytest.raises(MappingError) as caught:
        resolve_conflict(conflict, "value", value={"a": [1, 2]})
    assert caught.value.field == "name"
    deal.refresh_from_db()
    assert deal.name == "Local"


def test_5_a_local_edit_of_a_held_field_shows_on_its_open_conflict(deals_only, notion_emulator, frozen):
    FieldOwnership.objects.create(connection="notion", entity="deal", field="stage", owner="manual")
    deal = Opportunity.objects.create(name="Acme", stage="proposal")
    clean_sync()
    deal.stage = "negotiation"
    deal.save()
    notion_emulator.clock.advance(60)
    notion_emulator.human_edit(page_of(deal), {"Stage": "Closed Won"})
    clean_sync()
    deal.stage = "closed_lost"  # edited again while held
    deal.save()
    clean_sync()
    conflict = Conflict.objects.get(status=ConflictStatus.OPEN)
    assert (conflict.local_value, conflict.remote_value) == ("closed_lost", "closed_won")
    resolve_conflict(conflict, "keep_local")
    clean_sync()
    assert notion_emulator.page_values(page_of(deal))["Stage"] == "Closed Lost"


def test_8_a_local_value_notion_refuses_is_counted_on_the_record_not_the_page(deals_only, notion_emulator):
    deal = Opportunity.objects.create(name="Acme")
    clean_sync()
    deal.qualification = "q" * 200_001  # over Notion's 100 × 2,000 characters
    deal.save()
    notion_emulator.human_edit(page_of(deal), {"Notes": "from Notion"})
    run = sync()
    deal.refresh_from_db()
    assert deal.notes == "from Notion"  # the page applied
    assert not QuarantinedPage.objects.exists()
    entry = OutboxEntry.objects.get(local_id=deal.pk)
    assert "qualification" in entry.last_error and entry.attempts >= 1
    assert run.errors >= 1


@pytest.mark.parametrize("restored_by", ["staff", "person"])
def test_12_an_agent_revert_waits_while_trashed_and_is_sent_on_restore(
    deals_only, notion_emulator, restored_by
):
    deal = Opportunity.objects.create(name="Acme", probability=100)
    clean_sync()
    notion_emulator.human_edit(page_of(deal), {"Probability": 39})
    notion_emulator.human_edit(page_of(deal), in_trash=True)
    notion_emulator.reset_counters()
    clean_sync()  # archived here; Notion refuses edits to trashed pages: no revert yet
    deal.refresh_from_db()
    assert deal.archived and notion_emulator.count("pages.update") == 0
    if restored_by == "staff":
        deal.archived = False
        deal.save()
    else:
        notion_emulator.human_edit(page_of(deal), in_trash=False)
    clean_sync()
    deal.refresh_from_db()
    assert not deal.archived and deal.probability == 100
    assert notion_emulator.page_values(page_of(deal))["Probability"] == 100
    assert not notion_emulator.pages[page_of(deal)]["in_trash"]


# Found by the adversarial pass -----------------------------------------------------


@pytest.mark.parametrize("title", ["bad \x00 title", "t" * 256])
def test_a_new_page_whose_title_the_model_refuses_imports_as_untitled_with_a_conflict(
    deals_only, notion_emulator, title
):
    """DESIGN §7: the record syncs its other fields and an open conflict shows the value;
    no row holds a value its validators refuse (the title's stand-in is "Untitled")."""
    page = notion_emulator.human_create(deal_source(notion_emulator), {"Name": title, "Value": 12})
    runs = [sync(), sync()]
    deal = Opportunity.objects.get()
    deal.full_clean()
    assert (deal.name, deal.value) == ("Untitled", Decimal("12"))
    conflict = Conflict.objects.get(status=ConflictStatus.OPEN)
    # A NUL is shown as ␀ (PostgreSQL stores none in text or JSON).
    assert (conflict.field, conflict.remote_value) == ("name", title.replace("\x00", "\u2400"))
    assert conflict.reason.startswith("invalid remote value")
    assert not QuarantinedPage.objects.exists() and [run.errors for run in runs] == [0, 0]
    assert notion_emulator.page_values(page)["Name"] == title  # "Untitled" is not pushed over it
    notion_emulator.human_edit(page, {"Name": "Fixed"})
    clean_sync()
    deal.refresh_from_db()
    assert deal.name == "Fixed"
    assert not Conflict.objects.filter(status=ConflictStatus.OPEN).exists()
    assert not QuarantinedPage.objects.exists()


def test_an_untitled_page_imports_as_untitled_and_is_not_echoed(deals_only, notion_emulator):
    page = notion_emulator.human_create(deal_source(notion_emulator), {"Stage": "Proposal"})
    clean_sync()
    deal = Opportunity.objects.get()
    assert deal.name == "Untitled"
    deal.full_clean()
    notion_emulator.reset_counters()
    clean_sync()
    assert notion_emulator.writes() == 0 and notion_emulator.page_values(page)["Name"] == ""


def test_a_duplicate_of_a_contact_page_is_held_never_dropped(notion_settings, notion_emulator):
    contacts = notion_emulator.ids["contact_source"]
    contact = Contact.objects.create(name="Ada", email="ada@example.com")
    clean_sync()
    original = notion_emulator.page_values(page_of(contact, "contact"))
    copy = notion_emulator.human_create(contacts, original)  # Notion's "Duplicate": same email
    runs = [sync() for _ in range(3)]
    held = QuarantinedPage.objects.get()
    assert held.remote_id == copy and "email" in held.error.lower()
    # Reported once; then held, counted in every run's quarantined, failing no run.
    assert [(run.quarantined, run.errors, run.status) for run in runs] == [
        (1, 1, RunStatus.FAILED),
        (1, 0, RunStatus.SUCCESS),
        (1, 0, RunStatus.SUCCESS),
    ]


def test_an_agent_field_set_to_an_unusable_value_in_notion_is_reverted(deals_only, notion_emulator):
    deal = Opportunity.objects.create(name="Acme", probability=40, qualification="ok")
    clean_sync()
    notion_emulator.human_edit(page_of(deal), {"Probability": 500, "Qualification": "bad \x00"})
    clean_sync()
    values = notion_emulator.page_values(page_of(deal))
    assert (values["Probability"], values["Qualification"]) == (40, "ok")
    deal.refresh_from_db()
    assert (deal.probability, deal.qualification) == (40, "ok")
    assert not Conflict.objects.filter(status=ConflictStatus.OPEN).exists()
    assert Conflict.objects.filter(reason__startswith="agent-owned").count() == 2


def test_a_nul_inside_a_tag_is_an_invalid_value_not_a_lost_page(deals_only, notion_emulator):
    page = notion_emulator.human_create(
        deal_source(notion_emulator), {"Name": "Acme", "Tags": ["ok", "b\x00d"]}
    )
    clean_sync()
    deal = Opportunity.objects.get()
    assert deal.tags == [] and deal.name == "Acme"
    assert Conflict.objects.get(status=ConflictStatus.OPEN).field == "tags"
    assert SyncLink.objects.get().remote_id == page


def test_resolutions_refuse_unusable_remote_values_and_empty_required_fields(deals_only, notion_emulator):
    deal = Opportunity.objects.create(name="Acme")
    clean_sync()
    notion_emulator.human_edit(page_of(deal), {"Value": 5e20})
    clean_sync()
    invalid = Conflict.objects.get(status=ConflictStatus.OPEN, field="value")
    with pytest.raises(MappingError):
        resolve_conflict(invalid, "take_remote")
    for empty in (None, ""):
        with pytest.raises(MappingError, match="cannot be empty"):
            resolve_conflict(invalid, "value", value=empty)
    resolve_conflict(invalid, "value", value="99.5")
    clean_sync()
    deal.refresh_from_db()
    assert deal.value == Decimal("99.5") and notion_emulator.page_values(page_of(deal))["Value"] == 99.5


# 6 -----------------------------------------------------------------------------------


def test_6_a_renamed_property_keeps_syncing_a_pending_local_write(deals_only, notion_emulator):
    deal = Opportunity.objects.create(name="Acme", value=10)
    clean_sync()
    notion_emulator.rename_property(deal_source(notion_emulator), "Value", "Amount")
    deal.value = 20
    deal.save()
    run = clean_sync()
    assert run.updated_remote == 1
    assert notion_emulator.page_values(page_of(deal))["Amount"] == 20
    notion_emulator.rename_property(deal_source(notion_emulator), "Amount", "Value")
    clean_sync()
    deal.refresh_from_db()
    assert deal.value == 20 and notion_emulator.page_values(page_of(deal))["Value"] == 20


def test_6_a_deleted_property_blocks_its_field_visibly_and_loses_no_write(
    deals_only, notion_emulator, django_user_model, client
):
    source = deal_source(notion_emulator)
    deal = Opportunity.objects.create(name="Acme", value=10, stage="proposal")
    clean_sync()
    notion_emulator.delete_property(source, "Value")
    notion_emulator.human_edit(page_of(deal), {"Notes": "the schema changed"})  # a page shows it
    deal.value = 20
    deal.stage = "negotiation"
    deal.save()
    notion_emulator.reset_counters()
    clean_sync()
    assert notion_emulator.count("pages.update") == 1  # one request, the stage only
    assert notion_emulator.page_values(page_of(deal))["Stage"] == "Negotiation"
    assert SyncLink.objects.get().base["value"] == "10"  # not recorded as agreed
    assert OutboxEntry.objects.filter(local_id=deal.pk).exists()  # the value waits
    staff = django_user_model.objects.create_superuser("staff", "s@example.com", "pw")
    client.force_login(staff)
    page = client.get("/admin/crmsync/syncconnection/notion/change/").content.decode()
    assert "Fields not syncing" in page and "&#x27;Value&#x27;" in page
    # Staff restore the property: the waiting local value is pushed, never pulled over.
    notion_emulator.add_property(source, "Value", "number")
    from crmsync.registry import connections

    connections.reset()
    clean_sync()
    clean_sync()
    deal.refresh_from_db()
    assert deal.value == 20 and notion_emulator.page_values(page_of(deal))["Value"] == 20


# Found by the second adversarial pass ----------------------------------------------


@pytest.mark.parametrize("retry_after", [10**12, 10**23])
def test_an_absurd_retry_after_defers_a_day_at_most_and_breaks_nothing(
    deals_only, notion_emulator, retry_after
):
    clean_sync()
    before = SyncConnection.objects.get().last_success_at
    notion_emulator.throttle_next(retry_after=retry_after, endpoint="data_sources.query")
    run = sync()
    assert (run.status, run.errors) == (RunStatus.DEFERRED, 0)
    until = SyncEngine("notion").adapter.deferred_until()
    assert until is not None and until <= timezone.now() + dt.timedelta(days=1, seconds=5)
    again = sync()  # a fresh engine: still deferred, nothing sent, no traceback
    assert again.status == RunStatus.DEFERRED and again.requests == 0
    assert SyncConnection.objects.get().last_success_at == before  # deferred is no success


def test_a_quarantined_record_fails_no_later_run(deals_only, notion_emulator, settings):
    settings.CRMSYNC = {**settings.CRMSYNC, "MAX_RECORD_FAILURES": 1}
    deal = Opportunity.objects.create(name="Acme")
    clean_sync()
    deal.qualification = "q" * 200_001  # Notion refuses it
    deal.save()
    assert sync().errors == 1
    assert OutboxEntry.objects.get(local_id=deal.pk).quarantined
    notion_emulator.human_edit(page_of(deal), {"Notes": "a person edits the page"})
    run = clean_sync()  # the page applies; the known-bad value fails no run again
    deal.refresh_from_db()
    assert deal.notes == "a person edits the page" and run.quarantined == 1


def test_an_agent_value_the_model_refuses_on_a_new_page_is_not_erased_by_an_idle_run(
    deals_only, notion_emulator
):
    page = notion_emulator.human_create(deal_source(notion_emulator), {"Name": "Odd", "Probability": -3})
    sync()
    notion_emulator.reset_counters()
    sync()
    sync()
    assert notion_emulator.writes() == 0
    assert notion_emulator.page_values(page)["Probability"] == -3
    assert Conflict.objects.get(field="probability").status == ConflictStatus.OPEN


@pytest.mark.parametrize("how", ["re-made"])  # (the emulator clears values on a retype)
def test_6_a_property_made_again_never_pulls_its_emptiness_over_local_values(
    deals_only, notion_emulator, how
):
    source = deal_source(notion_emulator)
    deal = Opportunity.objects.create(name="Acme", value=10, notes="keep me")
    other = Opportunity.objects.create(name="Other", value=7)
    clean_sync()
    if how == "re-made":
        notion_emulator.delete_property(source, "Value")
        notion_emulator.delete_property(source, "Notes")
    else:
        notion_emulator.retype_property(source, "Value", "rich_text")
    notion_emulator.human_edit(page_of(deal), {"Stage": "Proposal"})
    deal.value = 20  # acknowledged while the field is blocked
    deal.save()
    clean_sync()
    if how == "re-made":
        notion_emulator.add_property(source, "Value", "number")  # a new, empty property
        notion_emulator.add_property(source, "Notes", "rich_text")
    else:
        notion_emulator.retype_property(source, "Value", "number")
    from crmsync.registry import connections

    connections.reset()
    notion_emulator.clock.advance(120)
    notion_emulator.human_edit(page_of(deal), {"Stage": "Negotiation"})  # a later edit elsewhere
    clean_sync()
    clean_sync()
    deal.refresh_from_db()
    other.refresh_from_db()
    assert (deal.value, deal.stage, other.value) == (Decimal("20"), "negotiation", Decimal("7"))
    assert deal.notes == "keep me"
    assert notion_emulator.page_values(page_of(deal))["Value"] == 20
    assert notion_emulator.page_values(page_of(other))["Value"] == 7  # the new property is filled
    notion_emulator.reset_counters()
    clean_sync()
    assert notion_emulator.writes() == 0


def test_what_notion_holds_is_pulled_even_where_a_local_edit_would_be_refused(
    notion_settings, notion_emulator
):
    """The API and the admin refuse text over Notion's 100 × 2,000 limit; a page that
    holds more (one oversized item) is still pulled whole: what a CRM sends is not judged
    by what the CRM could take."""
    deal = Opportunity.objects.create(name="Long notes")
    sync()
    page = SyncLink.objects.get(local_id=deal.pk).remote_id
    notion_emulator.corrupt(
        page, "Notes", {"id": "z", "type": "rich_text", "rich_text": [{"plain_text": "n" * 250_000}]}
    )
    notion_emulator.human_edit(page, {"Name": "Long notes (edited)"})
    run = sync()
    deal.refresh_from_db()
    assert (deal.name, len(deal.notes)) == ("Long notes (edited)", 250_000)
    assert run.quarantined == 0 and not QuarantinedPage.objects.exists()


def test_an_error_quoting_a_huge_remote_value_is_cut_in_the_run_and_the_log(
    notion_settings, notion_emulator, caplog
):
    page = notion_emulator.human_create(deal_source(notion_emulator), {"Name": "Huge"})
    notion_emulator.corrupt(page, "Value", {"id": "x", "type": "number", "number": "x" * 5000})
    run = sync()
    assert run.errors == 1 and QuarantinedPage.objects.count() == 1
    assert "x" * 100 in run.error_summary and len(run.error_summary) <= 500
    assert all(len(record.getMessage()) < 700 for record in caplog.records)
    assert len(QuarantinedPage.objects.get().error) <= 2000

"""The sync engine against the Notion emulator, over HTTP with the real notion-client."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from crmsync.choices import ConflictStatus, Owner, RunStatus, Winner
from crmsync.models import (
    Activity,
    Conflict,
    Contact,
    FieldOwnership,
    Opportunity,
    OutboxEntry,
    SyncConnection,
    SyncLink,
)
from crmsync.sync.engine import SyncEngine

pytestmark = pytest.mark.django_db


def sync(**kwargs):
    run = SyncEngine("notion", **kwargs).run()
    assert run.status in (RunStatus.SUCCESS, RunStatus.SKIPPED), run.error_summary
    return run


def page_of(obj, entity="deal"):
    return SyncLink.objects.get(connection="notion", entity=entity, local_id=obj.pk).remote_id


def make_deal(**values):
    deal = Opportunity(**{"name": "Acme rollout", "stage": "proposal", "value": Decimal("1200.50"), **values})
    deal.save()
    return deal


def backdate(obj, *fields, minutes=10):
    """Pretend the local edits of ``fields`` happened ``minutes`` ago."""
    past = (timezone.now() - dt.timedelta(minutes=minutes)).isoformat()
    obj.field_modified_at.update(dict.fromkeys(fields, past))
    type(obj).objects.filter(pk=obj.pk).update(field_modified_at=obj.field_modified_at)


def test_new_local_deal_becomes_one_page_with_every_mapped_property(notion_settings, notion_emulator):
    contact = Contact.objects.create(name="Ada", email="ada@example.com")
    deal = make_deal(
        close_date=dt.date(2026, 12, 31),
        probability=40,
        confidence=Decimal("0.7"),
        qualification="Budget ok",
        notes="Call Monday",
        tags=["emea", "enterprise"],
        contact=contact,
    )
    run = sync()
    pages = notion_emulator.pages_in(notion_emulator.ids["deal_source"])
    assert len(pages) == 1
    assert pages[0]["values"] == {
        "Name": "Acme rollout",
        "Stage": "Proposal",
        "Value": 1200.5,
        "Close Date": "2026-12-31",
        "Probability": 40,
        "Confidence": 0.7,
        "Qualification": "Budget ok",
        "Notes": "Call Monday",
        "Tags": ["emea", "enterprise"],
        "Contact Email": "ada@example.com",
        "CRM Sync ID": str(deal.pk),
    }
    assert run.created_remote == 2  # the deal and its contact
    assert not OutboxEntry.objects.exists()


def test_new_remote_page_becomes_a_local_deal_and_gets_its_sync_id(notion_settings, notion_emulator):
    page_id = notion_emulator.human_create(
        notion_emulator.ids["deal_source"],
        {
            "Name": "Globex",
            "Stage": "Discovery",
            "Value": 5000,
            "Tags": ["b", "a"],
            "Contact Email": "Hank@Globex.com",
            "Probability": 20,
            "Notes": "From Notion",
        },
    )
    run = sync()
    deal = Opportunity.objects.get()
    assert (deal.name, deal.stage, deal.value, deal.probability, deal.notes) == (
        "Globex",
        "discovery",
        Decimal("5000"),
        20,
        "From Notion",
    )
    assert sorted(deal.tags) == ["a", "b"]
    assert deal.contact.email.lower() == "hank@globex.com"
    assert notion_emulator.page_values(page_id)["CRM Sync ID"] == str(deal.pk)
    assert run.created_local == 1
    # The contact made from the page's email is created in Notion by the next run (after
    # its pull had the chance to match a contact page made meanwhile); the sync id
    # write-back's echo is not a change.
    assert notion_emulator.count("pages.create") == 0
    second = sync()
    assert (second.updated_local, second.created_remote) == (0, 1)
    notion_emulator.reset_counters()
    assert sync().updated_local == 0
    assert notion_emulator.writes() == 0


def test_human_owned_field_edited_in_notion_arrives_locally(notion_settings, notion_emulator):
    deal = make_deal()
    sync()
    notion_emulator.human_edit(page_of(deal), {"Notes": "Decision maker is Bob", "Tags": ["hot"]})
    run = sync()
    deal.refresh_from_db()
    assert deal.notes == "Decision maker is Bob" and deal.tags == ["hot"]
    assert run.updated_local == 1 and run.conflicts == 0


def test_agent_owned_field_edited_in_notion_is_reverted_and_logged(notion_settings, notion_emulator):
    deal = make_deal(probability=40)
    sync()
    notion_emulator.human_edit(page_of(deal), {"Probability": 90})
    run = sync()
    deal.refresh_from_db()
    assert deal.probability == 40
    assert notion_emulator.page_values(page_of(deal))["Probability"] == 40
    conflict = Conflict.objects.get(field="probability")
    assert (conflict.rule, conflict.winner, conflict.remote_value, conflict.local_value) == (
        Owner.AGENT,
        Winner.LOCAL,
        "90",
        "40",
    )
    assert run.updated_remote == 1
    # The revert's echo is no change: the next run writes nothing.
    notion_emulator.reset_counters()
    sync()
    assert notion_emulator.writes() == 0 and Conflict.objects.count() == 1


def test_shared_field_changed_on_both_sides_last_write_wins_with_a_conflict(notion_settings, notion_emulator):
    deal = make_deal()
    sync()
    deal.stage = "negotiation"
    deal.save()
    backdate(deal, "stage", minutes=10)  # the local edit is older than the Notion edit
    notion_emulator.human_edit(page_of(deal), {"Stage": "Closed Won"})
    sync()
    deal.refresh_from_db()
    assert deal.stage == "closed_won"
    conflict = Conflict.objects.get(field="stage")
    assert (conflict.winner, conflict.local_value, conflict.remote_value, conflict.base_value) == (
        Winner.REMOTE,
        "negotiation",
        "closed_won",
        "proposal",
    )
    assert conflict.status == ConflictStatus.AUTO_RESOLVED
    # The row shows the times the merge compared: the local edit's, not the one the
    # remote value was stamped with when it was applied.
    assert conflict.local_time < conflict.remote_time


def test_shared_field_tie_in_the_same_minute_goes_to_local(notion_settings, notion_emulator):
    deal = make_deal()
    sync()
    notion_emulator.clock.set(timezone.now())  # both edits in the same minute
    deal.value = Decimal("10")
    deal.save()
    notion_emulator.human_edit(page_of(deal), {"Value": 20})
    sync()
    deal.refresh_from_db()
    assert deal.value == Decimal("10")
    assert notion_emulator.page_values(page_of(deal))["Value"] == 10
    assert Conflict.objects.get(field="value").winner == Winner.LOCAL


def test_the_same_edit_on_both_sides_is_no_conflict(notion_settings, notion_emulator):
    deal = make_deal()
    sync()
    deal.stage = "negotiation"
    deal.save()
    notion_emulator.human_edit(page_of(deal), {"Stage": "Negotiation"})
    notion_emulator.reset_counters()
    sync()
    assert not Conflict.objects.exists()
    assert notion_emulator.writes() == 0


def test_an_edit_in_the_same_minute_as_the_last_sync_is_not_missed(notion_settings, notion_emulator):
    minute = timezone.now().replace(second=5, microsecond=0)
    notion_emulator.clock.set(minute)
    deal = make_deal()
    sync()  # the page is created at hh:mm:05; the watermark is hh:mm
    notion_emulator.clock.set(minute + dt.timedelta(seconds=40))
    notion_emulator.human_edit(page_of(deal), {"Notes": "late in the same minute"})
    sync()
    deal.refresh_from_db()
    assert deal.notes == "late in the same minute"


def test_idle_runs_write_nothing_and_cost_one_query_per_stream(settings, notion_emulator):
    from crmsync.testing.pytest_plugin import notion_options

    options = notion_options(notion_emulator, contacts_database_id=None, activities_database_id=None)
    settings.CRMSYNC = {"CONNECTIONS": {"notion": {"ADAPTER": "notion", "OPTIONS": options}}}
    for index in range(3):
        make_deal(name=f"Deal {index}")
    sync()
    sync()
    before = list(Opportunity.objects.values_list("pk", "updated_at").order_by("pk"))
    notion_emulator.reset_counters()
    first, second = sync(), sync()
    assert notion_emulator.writes() == 0
    assert list(Opportunity.objects.values_list("pk", "updated_at").order_by("pk")) == before
    # DESIGN §3: one query of pages edited since the watermark plus one in_trash query.
    assert first.requests == second.requests == 2
    assert notion_emulator.counts() == {"data_sources.query": 4}


def test_ghost_create_leaves_exactly_one_remote_page(notion_settings, notion_emulator):
    deal = make_deal()
    notion_emulator.fail_next(status=502, endpoint="pages.create", after=True)
    run = SyncEngine("notion").run()
    assert run.errors == 1  # the create's outcome was unknown
    assert OutboxEntry.objects.get(local_id=deal.pk).create_sent_at is not None
    sync()
    pages = notion_emulator.pages_in(notion_emulator.ids["deal_source"])
    assert [p["values"]["CRM Sync ID"] for p in pages] == [str(deal.pk)]
    assert SyncLink.objects.filter(local_id=deal.pk).count() == 1
    assert not OutboxEntry.objects.filter(local_id=deal.pk).exists()


def test_ambiguous_create_is_looked_up_before_it_is_sent_again(notion_settings, notion_emulator):
    deal = make_deal()
    notion_emulator.fail_next(status=500, endpoint="pages.create")  # not applied this time
    SyncEngine("notion").run()
    notion_emulator.reset_counters()
    sync()
    assert notion_emulator.count("pages.create") == 1
    assert len(notion_emulator.pages_in(notion_emulator.ids["deal_source"])) == 1
    assert SyncLink.objects.filter(local_id=deal.pk).exists()


def test_busy_connection_is_skipped(notion_settings, notion_emulator):
    holder = SyncEngine("notion", owner="other-worker")
    assert holder.acquire_lease()
    run = SyncEngine("notion").run()
    assert run.status == RunStatus.SKIPPED
    # An expired lease is taken over.
    SyncConnection.objects.filter(alias="notion").update(
        lease_expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    assert SyncEngine("notion").run().status == RunStatus.SUCCESS


def test_poison_record_is_quarantined_after_k_tries_while_others_sync(
    notion_settings, notion_emulator, settings
):
    settings.CRMSYNC = {**settings.CRMSYNC, "MAX_RECORD_FAILURES": 2}
    good = make_deal(name="Good")
    bad = make_deal(name="Bad", notes="x" * 200_001)  # over Notion's 100 × 2,000 characters
    first = SyncEngine("notion").run()
    assert first.errors == 1 and first.status == RunStatus.FAILED
    assert SyncLink.objects.filter(local_id=good.pk).exists()
    second = SyncEngine("notion").run()
    assert second.quarantined == 1
    entry = OutboxEntry.objects.get(local_id=bad.pk)
    assert entry.quarantined and "Notes" in entry.last_error
    third = SyncEngine("notion").run()
    assert third.errors == 0 and third.status == RunStatus.SUCCESS
    # An edit retries it.
    bad.notes = "short"
    bad.save()
    sync()
    assert SyncLink.objects.filter(local_id=bad.pk).exists()


def test_trash_and_restore_follow_both_ways(notion_settings, notion_emulator):
    deal = make_deal()
    other = make_deal(name="Other")
    sync()
    notion_emulator.human_edit(page_of(deal), in_trash=True)
    other.archived = True
    other.save()
    run = sync()
    deal.refresh_from_db()
    assert deal.archived
    assert notion_emulator.pages[page_of(other)]["in_trash"]
    assert run.archived == 2
    notion_emulator.human_edit(page_of(deal), in_trash=False)
    other.archived = False
    other.save()
    sync()
    deal.refresh_from_db()
    assert not deal.archived
    assert not notion_emulator.pages[page_of(other)]["in_trash"]


def test_archiving_with_pending_changes_sends_them_before_the_trash(notion_settings, notion_emulator):
    deal = make_deal()
    sync()
    deal.stage = "closed_lost"
    deal.archived = True
    deal.save()
    notion_emulator.reset_counters()
    sync()
    page = notion_emulator.pages[page_of(deal)]
    assert page["in_trash"] and notion_emulator.page_values(page["id"])["Stage"] == "Closed Lost"
    assert notion_emulator.count("pages.update") == 2


def test_a_page_missing_from_queries_is_not_taken_as_deleted(notion_settings, notion_emulator):
    deal = make_deal()
    sync()
    notion_emulator.hide(page_of(deal))
    notion_emulator.clock.advance(120)
    sync()
    deal.refresh_from_db()
    assert not deal.archived


def test_unmapped_stage_keeps_the_local_stage_and_logs_a_conflict(notion_settings, notion_emulator):
    deal = make_deal()
    sync()
    notion_emulator.human_edit(page_of(deal), {"Stage": "On Hold"})
    sync()
    deal.refresh_from_db()
    assert deal.stage == "proposal"
    conflict = Conflict.objects.get(field="stage")
    assert conflict.status == ConflictStatus.OPEN and "unmapped" in conflict.reason


def test_manual_field_changed_on_both_sides_is_held_until_resolved(notion_settings, notion_emulator):
    FieldOwnership.objects.create(connection="notion", entity="deal", field="name", owner=Owner.MANUAL)
    deal = make_deal()
    sync()
    deal.name = "Local name"
    deal.save()
    notion_emulator.human_edit(page_of(deal), {"Name": "Remote name"})
    sync()
    sync()
    deal.refresh_from_db()
    assert deal.name == "Local name"
    assert notion_emulator.page_values(page_of(deal))["Name"] == "Remote name"
    assert Conflict.objects.filter(field="name", status=ConflictStatus.OPEN).count() == 1


def test_duplicated_page_becomes_a_new_record(notion_settings, notion_emulator):
    deal = make_deal()
    sync()
    copy = notion_emulator.human_create(
        notion_emulator.ids["deal_source"], {"Name": "Acme rollout (copy)", "CRM Sync ID": str(deal.pk)}
    )
    sync()
    assert Opportunity.objects.count() == 2
    new = Opportunity.objects.exclude(pk=deal.pk).get()
    assert notion_emulator.page_values(copy)["CRM Sync ID"] == str(new.pk)
    assert "duplicate sync id" in Conflict.objects.get(object_id=new.pk).reason


def test_contacts_sync_and_match_by_email(notion_settings, notion_emulator):
    local = Contact.objects.create(name="Ada L.", email="ada@example.com")
    page = notion_emulator.human_create(
        notion_emulator.ids["contact_source"],
        {"Name": "Ada Lovelace", "Email": "ADA@example.com", "Company": "AE"},
    )
    sync()
    assert Contact.objects.count() == 1
    assert SyncLink.objects.get(entity="contact", local_id=local.pk).remote_id == page
    local.refresh_from_db()
    assert local.company == "AE"
    assert notion_emulator.page_values(page)["CRM Sync ID"] == str(local.pk)


def test_activities_are_pushed_once_related_to_their_deal(notion_settings, notion_emulator):
    deal = make_deal()
    activity = Activity.objects.create(opportunity=deal, kind="call", subject="Intro call", body="Went well")
    sync()
    pages = notion_emulator.pages_in(notion_emulator.ids["activity_source"])
    assert len(pages) == 1
    values = pages[0]["values"]
    assert (values["Subject"], values["Kind"], values["Deal"], values["CRM Sync ID"]) == (
        "Intro call",
        "Call",
        [page_of(deal)],
        str(activity.pk),
    )
    activity.body = "edited"
    activity.save()
    notion_emulator.reset_counters()
    sync()
    assert notion_emulator.writes() == 0


def test_local_save_during_merge_is_never_overwritten(notion_settings, notion_emulator):
    deal = make_deal()
    sync()
    notion_emulator.human_edit(page_of(deal), {"Notes": "from notion"})
    engine = SyncEngine("notion")
    stale = Opportunity.objects.select_related("contact").get(pk=deal.pk)
    deal.stage = "negotiation"
    deal.save()  # a user's save after the engine read the record
    link = SyncLink.objects.get(local_id=deal.pk)
    record = engine.adapter.get("deal", link.remote_id)
    assert engine.acquire_lease()
    engine.merge_linked("deal", record, link, stale)
    deal.refresh_from_db()
    assert (deal.stage, deal.notes) == ("negotiation", "from notion")


def test_a_time_boxed_run_stops_and_the_next_resumes(notion_settings, notion_emulator):
    source = notion_emulator.ids["deal_source"]
    for index in range(150):
        notion_emulator.human_create(source, {"Name": f"Remote {index}"})
    # The first page of deals (after the contacts query) arrives after the time limit.
    notion_emulator.fail_next(status=None, delay=0.5, skip=1, endpoint="data_sources.query")
    first = SyncEngine("notion", time_limit=0.3).run()
    assert first.status == RunStatus.PARTIAL
    assert Opportunity.objects.count() == 100  # the page it had was finished
    sync()
    assert Opportunity.objects.count() == 150
    assert len({p["values"]["CRM Sync ID"] for p in notion_emulator.pages_in(source)}) == 150


@pytest.mark.parametrize(
    ("choice", "value", "expected_stage", "notion_stage"),
    [
        ("take_remote", None, "closed_won", "Closed Won"),
        ("keep_local", None, "negotiation", "Negotiation"),
        ("value", "discovery", "discovery", "Discovery"),
    ],
)
def test_resolving_a_held_conflict_is_applied_by_the_next_sync(
    notion_settings, notion_emulator, django_user_model, choice, value, expected_stage, notion_stage
):
    from crmsync.sync.engine import resolve_conflict

    FieldOwnership.objects.create(connection="notion", entity="deal", field="stage", owner=Owner.MANUAL)
    deal = make_deal()
    sync()
    deal.stage = "negotiation"
    deal.save()
    notion_emulator.human_edit(page_of(deal), {"Stage": "Closed Won"})
    sync()
    conflict = Conflict.objects.get(field="stage", status=ConflictStatus.OPEN)
    staff = django_user_model.objects.create_user("staff")
    resolve_conflict(conflict, choice, value=value, user=staff)
    sync()
    deal.refresh_from_db()
    assert deal.stage == expected_stage
    assert notion_emulator.page_values(page_of(deal))["Stage"] == notion_stage
    conflict.refresh_from_db()
    assert (conflict.status, conflict.resolved_by) == (ConflictStatus.RESOLVED, staff)
    assert not Conflict.objects.filter(status=ConflictStatus.OPEN).exists()
    notion_emulator.reset_counters()
    sync()
    assert notion_emulator.writes() == 0


def test_resolving_refuses_bad_values_and_resolved_conflicts(notion_settings, notion_emulator):
    from crmsync.exceptions import MappingError
    from crmsync.sync.engine import resolve_conflict

    deal = make_deal()
    sync()
    notion_emulator.human_edit(page_of(deal), {"Stage": "On Hold"})
    sync()
    conflict = Conflict.objects.get(field="stage")
    with pytest.raises(MappingError):
        resolve_conflict(conflict, "take_remote")  # "On Hold" is no local stage
    with pytest.raises(MappingError):
        resolve_conflict(conflict, "value", value="won")
    resolve_conflict(conflict, "keep_local")
    with pytest.raises(ValueError, match="already resolved"):
        resolve_conflict(conflict, "keep_local")
    sync()
    assert notion_emulator.page_values(page_of(deal))["Stage"] == "Proposal"


def test_quiet_idle_runs_reread_no_pages(notion_settings, notion_emulator):
    # The watermark follows Notion's clock (Date header), not only the last edit seen:
    # after a quiet spell an idle run lists nothing, however many pages exist.
    for index in range(120):
        make_deal(name=f"Deal {index}")
    sync()
    notion_emulator.clock.advance(300)
    sync()  # may re-read the creates' echoes once
    notion_emulator.reset_counters()
    sync()
    queries = [log for log in notion_emulator.requests if log.endpoint == "data_sources.query"]
    assert queries and sum(log.returned for log in queries) == 0
    assert len(queries) == 4  # deals and contacts: one query each plus one in_trash each


def test_records_inserted_without_save_are_still_pushed(notion_settings, notion_emulator):
    make_deal(name="Saved")
    sync()
    Opportunity.objects.bulk_create(
        [Opportunity(name="Bulk 1"), Opportunity(name="Bulk 2")]
    )  # no outbox entry
    sync()
    names = sorted(p["values"]["Name"] for p in notion_emulator.pages_in(notion_emulator.ids["deal_source"]))
    assert names == ["Bulk 1", "Bulk 2", "Saved"]


def test_the_engine_runs_over_any_adapter_the_contract_describes(settings):
    # The engine passes only what the adapter base class declares (the local adapter
    # once raised TypeError on iter_changes(..., by=, include_trashed=)).
    settings.CRMSYNC = {
        "CONNECTIONS": {"fake": {"ADAPTER": "fake"}},
        "ADAPTERS": {"fake": "crmsync.testing.fake.FakeAdapter"},
    }
    make_deal(name="Local")
    for _ in range(2):
        run = SyncEngine("fake").run()
        assert run.status == RunStatus.SUCCESS, run.error_summary
    settings.CRMSYNC = {"CONNECTIONS": {"local": {"ADAPTER": "local"}}}
    run = SyncEngine("local").run()
    assert run.status == RunStatus.SUCCESS, run.error_summary

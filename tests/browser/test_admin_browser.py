"""The admin in headless Chromium (Debian's), driven by Playwright, against the emulator."""

import pytest

from crmsync.choices import ConflictStatus
from crmsync.models import Activity, Conflict, FieldOwnership, Opportunity, SyncLink, SyncRun
from crmsync.sync.engine import SyncEngine

pytestmark = [pytest.mark.heavy, pytest.mark.django_db(transaction=True)]


def test_edit_a_deal_stage_and_see_it_pending_push(page, notion_settings, notion_emulator):
    deal = Opportunity.objects.create(name="Acme rollout", stage="proposal")
    SyncEngine("notion").run()
    page.goto(f"/admin/crmsync/opportunity/{deal.pk}/change/")
    page.select_option("#id_stage", "negotiation")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    row = page.locator("#result_list tr", has_text="Acme rollout")
    assert "Negotiation" in row.inner_text() and "Pending push" in row.inner_text()
    SyncEngine("notion").run()
    page.reload()
    assert "Linked" in page.locator("#result_list tr", has_text="Acme rollout").inner_text()
    remote = SyncLink.objects.get(local_id=deal.pk).remote_id
    assert notion_emulator.page_values(remote)["Stage"] == "Negotiation"


def test_take_the_remote_value_of_a_conflict(page, notion_settings, notion_emulator, screenshot_dir):
    FieldOwnership.objects.create(connection="notion", entity="deal", field="stage", owner="manual")
    deal = Opportunity.objects.create(name="Globex pilot", stage="proposal", value=12000)
    SyncEngine("notion").run()
    deal.stage = "negotiation"
    deal.save()
    notion_emulator.human_edit(SyncLink.objects.get(local_id=deal.pk).remote_id, {"Stage": "Closed Won"})
    SyncEngine("notion").run()
    conflict = Conflict.objects.get(status=ConflictStatus.OPEN)
    page.goto("/admin/crmsync/conflict/")
    page.click(f"#result_list a[href$='/{conflict.pk}/change/']")
    page.wait_for_selector("#conflict-sides")
    sides = page.inner_text("#conflict-sides")
    assert "Closed Won" in sides and "Negotiation" in sides and '"' not in sides  # values, not JSON
    # The value of one's own is a choice of stages; nothing below the table repeats the fields.
    assert page.locator("#resolve-form select[name=value] option").count() == 7
    assert page.locator(".field-local_value").count() == 0
    page.screenshot(path=str(screenshot_dir / "conflict-detail.png"), full_page=True)
    page.click("button[value=take_remote]")
    page.wait_for_selector(".messagelist .success")
    assert "Resolved" in page.inner_text("#conflict-status")
    SyncEngine("notion").run()
    page.goto(f"/admin/crmsync/opportunity/{deal.pk}/change/")
    assert page.input_value("#id_stage") == "closed_won"
    conflict.refresh_from_db()
    assert conflict.status == ConflictStatus.RESOLVED and conflict.resolved_by.username == "staff"


def test_change_a_fields_owner_and_the_next_sync_obeys(page, notion_settings, notion_emulator):
    deal = Opportunity.objects.create(name="Initech", probability=40)
    SyncEngine("notion").run()
    page.goto("/admin/crmsync/fieldownership/?entity__exact=deal")
    row = page.locator("#result_list tr", has_text="probability")
    row.locator("select").select_option("human")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    notion_emulator.human_edit(SyncLink.objects.get(local_id=deal.pk).remote_id, {"Probability": 90})
    SyncEngine("notion").run()
    deal.refresh_from_db()
    assert deal.probability == 90  # human-owned now: the CRM's value wins


def test_sync_now_button(page, notion_settings, notion_emulator, screenshot_dir):
    Opportunity.objects.create(name="Umbrella renewal")
    bad = Opportunity.objects.create(name="Oversized notes", notes="x" * 200_001)
    for _ in range(3):
        SyncEngine("notion").run()
    page.goto("/admin/crmsync/syncconnection/")
    page.click("#result_list a:text('notion')")
    page.wait_for_selector("#connection-health")
    assert str(bad.pk) in page.inner_text("#quarantined")
    page.click("#sync-now")
    page.wait_for_selector(".messagelist .success")
    assert "Sync of notion enqueued" in page.inner_text(".messagelist")
    assert SyncRun.objects.filter(connection="notion").count() == 4
    assert notion_emulator.token not in page.content()
    page.screenshot(path=str(screenshot_dir / "connection-health.png"), full_page=True)


def test_the_deal_page_fits_1400_px_and_shows_tags_as_a_list(browser, live_server, page, screenshot_dir):
    deal = Opportunity.objects.create(
        name="Initech — expansion", stage="proposal", value=80000, tags=["demo", "emea"]
    )
    for index in range(3):
        Activity.objects.create(
            opportunity=deal,
            kind="call",
            subject=f"Call {index}: pricing and rollout plan for the second region",
            body="Discussed the rollout in detail, next steps agreed with procurement. " * 3,
        )
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(f"/admin/crmsync/opportunity/{deal.pk}/change/")
    page.wait_for_selector("#activities-group")
    assert page.input_value("#id_tags") == "demo, emea"
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the page is {overflow} px wider than the window"
    page.screenshot(path=str(screenshot_dir / "deal-change.png"), full_page=True)


def test_the_api_docs_load_nothing_from_another_host(page, live_server):
    requested = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto("/api/docs/")  # the staff session authenticates the page and the schema
    page.wait_for_selector(".swagger-ui .info .title")
    assert "crmsync API" in page.inner_text(".swagger-ui .info .title")
    page.wait_for_selector("#operations-tag-opportunities")
    foreign = [url for url in requested if not url.startswith(live_server.url)]
    assert requested and foreign == [], foreign

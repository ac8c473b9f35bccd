import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from crmsync.models import Activity, Contact, Opportunity, OutboxEntry, SyncLink

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    user = get_user_model().objects.create_superuser("staff", "staff@example.com", "pw")
    client.force_login(user)
    return client


def make_deals(count, start=0):
    for index in range(start, start + count):
        contact = Contact.objects.create(name=f"C{index}", email=f"c{index}@example.com")
        deal = Opportunity.objects.create(name=f"Deal {index}", contact=contact, value=index)
        Activity.objects.create(opportunity=deal, subject="Call")


@pytest.mark.parametrize("url_name", ["crmsync_opportunity", "crmsync_contact", "crmsync_activity"])
def test_changelist_query_count_does_not_grow_with_rows(staff_client, url_name):
    url = reverse(f"admin:{url_name}_changelist")
    make_deals(5)
    with CaptureQueriesContext(connection) as few:
        assert staff_client.get(url).status_code == 200
    make_deals(300, start=5)
    with CaptureQueriesContext(connection) as many:
        response = staff_client.get(url)
    assert response.status_code == 200
    assert len(many) == len(few), [q["sql"] for q in many.captured_queries]


def test_search_by_contact_email_and_filter_by_stage(staff_client):
    make_deals(3)
    Opportunity.objects.filter(name="Deal 2").update(stage="closed_won")
    url = reverse("admin:crmsync_opportunity_changelist")
    assert "Deal 1" in staff_client.get(url, {"q": "c1@example.com"}).content.decode()
    page = staff_client.get(url, {"stage__exact": "closed_won"}).content.decode()
    assert "Deal 2" in page and "Deal 0" not in page


def test_edit_a_deal_stage_round_trip(staff_client, settings):
    settings.CRMSYNC = {"CONNECTIONS": {"crm": {"ADAPTER": "local"}}}
    make_deals(1)
    deal = Opportunity.objects.get()
    OutboxEntry.objects.all().delete()
    url = reverse("admin:crmsync_opportunity_change", args=[deal.pk])
    page = staff_client.get(url)
    assert page.status_code == 200 and "Call" in page.content.decode()  # the activity inline
    form = {
        "name": deal.name,
        "stage": "negotiation",
        "value": "12.50",
        "currency": "EUR",
        "close_date": "",
        "contact": deal.contact_id,
        "probability": "",
        "confidence": "",
        "qualification": "",
        "notes": "",
        "tags": "[]",
        "activities-TOTAL_FORMS": "0",
        "activities-INITIAL_FORMS": "0",
    }
    response = staff_client.post(url, form)
    assert response.status_code == 302, response.content.decode()[:2000]
    deal.refresh_from_db()
    assert (deal.stage, str(deal.value), deal.currency) == ("negotiation", "12.50", "EUR")
    assert OutboxEntry.objects.filter(local_id=deal.pk, connection="crm").exists()


def test_invalid_edit_shows_the_field_error(staff_client):
    make_deals(1)
    deal = Opportunity.objects.get()
    url = reverse("admin:crmsync_opportunity_change", args=[deal.pk])
    form = {
        "name": deal.name,
        "stage": "proposal",
        "value": "1",
        "currency": "USD",
        "probability": "150",
        "tags": "[]",
        "activities-TOTAL_FORMS": "0",
        "activities-INITIAL_FORMS": "0",
    }
    response = staff_client.post(url, form)
    assert response.status_code == 200
    assert "less than or equal to 100" in response.content.decode()


def test_deleting_in_the_admin_archives(staff_client):
    make_deals(1)
    deal = Opportunity.objects.get()
    url = reverse("admin:crmsync_opportunity_delete", args=[deal.pk])
    assert staff_client.post(url, {"post": "yes"}).status_code == 302
    deal.refresh_from_db()
    assert deal.archived


def test_crm_owned_fields_are_read_only_on_linked_deals(staff_client):
    make_deals(1)
    deal = Opportunity.objects.get()
    url = reverse("admin:crmsync_opportunity_change", args=[deal.pk])
    assert 'name="notes"' in staff_client.get(url).content.decode()
    SyncLink.objects.create(connection="notion", entity="deal", local_id=deal.pk, remote_id="page-1")
    page = staff_client.get(url).content.decode()
    assert 'name="notes"' not in page and 'name="stage"' in page


def test_non_staff_cannot_open_the_admin(client):
    user = get_user_model().objects.create_user("agent", password="pw")
    client.force_login(user)
    response = client.get(reverse("admin:crmsync_opportunity_changelist"))
    assert response.status_code == 302 and "/login/" in response["Location"]

import datetime as dt
from decimal import Decimal
from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command

from crmsync.models import Activity, Contact, Opportunity, OutboxEntry

pytestmark = pytest.mark.django_db


def errors_of(obj) -> dict:
    with pytest.raises(ValidationError) as caught:
        obj.full_clean()
    return caught.value.message_dict


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("probability", 150, "less than or equal to 100"),
        ("confidence", Decimal("1.5"), "less than or equal to 1"),
        ("confidence", Decimal("-0.1"), "greater than or equal to 0"),
        ("value", Decimal("-1"), "greater than or equal to 0"),
        ("stage", "won", "not a valid choice"),
        ("currency", "usd", "three-letter"),
        ("tags", ["a,b"], "comma"),
        ("tags", "not-a-list", "list of strings"),
    ],
)
def test_bad_deal_values_give_errors_naming_the_field(field, value, message):
    deal = Opportunity(name="Acme", **{field: value})
    errors = errors_of(deal)
    assert field in errors
    assert message in " ".join(errors[field])


def test_contact_email_is_validated_and_unique_ignoring_case():
    assert "email" in errors_of(Contact(name="Ada", email="not-an-email"))
    Contact.objects.create(name="Ada", email="ada@example.com")
    errors = errors_of(Contact(name="Ada 2", email="ADA@example.com"))
    assert "already exists" in str(errors)
    # Contacts without an email are not caught by the constraint.
    Contact.objects.create(name="No email 1", email="")
    Contact.objects.create(name="No email 2")
    assert Contact.objects.filter(email__isnull=True).count() == 2


def test_saving_stamps_the_modification_time_of_changed_fields_only():
    deal = Opportunity.objects.create(name="Acme", stage="proposal")
    created = dict(deal.field_modified_at)
    assert {"name", "stage", "value"} <= set(created)
    deal = Opportunity.objects.get(pk=deal.pk)
    deal.stage = "negotiation"
    deal.save()
    assert deal.field_modified_at["stage"] > created["stage"]
    assert deal.field_modified_at["name"] == created["name"]


def test_uuid_primary_key_is_the_sync_id():
    deal = Opportunity.objects.create(name="Acme")
    assert len(str(deal.pk)) == 36
    activity = Activity.objects.create(opportunity=deal, subject="Call", occurred_at=dt.datetime.now(dt.UTC))
    assert activity.pk != deal.pk


def test_saves_enter_the_outbox_of_each_connection(settings):
    settings.CRMSYNC = {"CONNECTIONS": {"a": {"ADAPTER": "local"}, "b": {"ADAPTER": "local"}}}
    deal = Opportunity.objects.create(name="Acme")
    assert set(OutboxEntry.objects.filter(local_id=deal.pk).values_list("connection", flat=True)) == {
        "a",
        "b",
    }
    # Coalesced per record: a second save does not add rows.
    deal.stage = "discovery"
    deal.save()
    assert OutboxEntry.objects.filter(local_id=deal.pk).count() == 2


def test_bulk_edits_through_update_synced_enter_the_outbox(settings):
    settings.CRMSYNC = {"CONNECTIONS": {"a": {"ADAPTER": "local"}}}
    deals = [Opportunity.objects.create(name=f"D{i}") for i in range(3)]
    OutboxEntry.objects.all().delete()
    assert Opportunity.objects.filter(name__startswith="D").update_synced(stage="closed_lost") == 3
    assert OutboxEntry.objects.count() == 3
    deal = Opportunity.objects.get(pk=deals[0].pk)
    assert deal.stage == "closed_lost" and "stage" in deal.field_modified_at


def test_migrations_are_complete():
    out = StringIO()
    call_command("makemigrations", "crmsync", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()

"""The REST API: CRUD, filters, permissions, ownership, ETags, query counts."""

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from crmsync.choices import ConflictStatus, Owner, Winner
from crmsync.models import (
    Activity,
    Conflict,
    Contact,
    FieldOwnership,
    Opportunity,
    OutboxEntry,
    SyncLink,
    SyncRun,
)

pytestmark = pytest.mark.django_db
URL = "/api/v1/opportunities/"


def client_for(user) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def agent(django_user_model):
    user = django_user_model.objects.create_user("agent")
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="crmsync"))
    return client_for(user)


@pytest.fixture
def viewer(django_user_model):
    user = django_user_model.objects.create_user("viewer")
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="crmsync", codename__startswith="view_")
    )
    return client_for(user)


def deal_payload(**overrides):
    return {
        "name": "Acme",
        "stage": "proposal",
        "value": "1200.50",
        "currency": "USD",
        "probability": 40,
        "confidence": "0.7",
        "tags": ["emea"],
        **overrides,
    }


def test_crud_round_trip_and_delete_archives(agent):
    contact = Contact.objects.create(name="Ada", email="ada@example.com")
    created = agent.post(URL, deal_payload(contact=str(contact.pk), close_date="2026-12-31"), format="json")
    assert created.status_code == 201, created.data
    assert created.data["value"] == "1200.50" and created.data["contact"] == str(contact.pk)
    detail = f"{URL}{created.data['id']}/"
    assert agent.get(detail).data["name"] == "Acme"
    assert agent.patch(detail, {"stage": "negotiation"}, format="json").data["stage"] == "negotiation"
    full = agent.put(detail, deal_payload(name="Acme 2"), format="json")
    assert full.status_code == 200 and full.data["name"] == "Acme 2"
    assert agent.delete(detail).status_code == 204
    deal = Opportunity.objects.get(pk=created.data["id"])
    assert deal.archived
    assert agent.get(URL).data["count"] == 0
    assert agent.get(URL, {"archived": "true"}).data["count"] == 1


@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        ({"stage": "won"}, "stage", "not a valid choice"),
        ({"probability": 150}, "probability", "less than or equal to 100"),
        ({"confidence": "1.5"}, "confidence", "less than or equal to 1"),
        ({"value": "-3"}, "value", "greater than or equal to 0"),
        ({"close_date": "31/12/2026"}, "close_date", "wrong format"),
        ({"contact": "00000000-0000-4000-8000-000000000000"}, "contact", "does not exist"),
        ({"contact": "not-a-uuid"}, "contact", "valid UUID"),
        ({"tags": ["a,b"]}, "tags", "comma"),
        ({"currency": "usd"}, "currency", "three-letter"),
        ({"name": ""}, "name", "may not be blank"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(agent, payload, field, message):
    response = agent.post(URL, deal_payload(**payload), format="json")
    assert response.status_code == 400
    assert field in response.data
    assert message in str(response.data[field])


def test_filters_search_ordering_and_bounded_pages(agent):
    contact = Contact.objects.create(name="Ada", email="ada@example.com")
    for index, stage in enumerate(["proposal", "negotiation", "discovery", "proposal"]):
        Opportunity.objects.create(
            name=f"Deal {index}",
            stage=stage,
            value=index * 100,
            close_date=dt.date(2026, 1, 1) + dt.timedelta(days=30 * index),
            contact=contact if index == 3 else None,
        )
    names = lambda response: [row["name"] for row in response.data["results"]]  # noqa: E731
    assert names(agent.get(URL, {"stage": ["proposal", "discovery"], "ordering": "name"})) == [
        "Deal 0",
        "Deal 2",
        "Deal 3",
    ]
    assert names(agent.get(URL, {"value_min": 100, "value_max": 200, "ordering": "value"})) == [
        "Deal 1",
        "Deal 2",
    ]
    assert names(
        agent.get(
            URL, {"close_date_after": "2026-01-15", "close_date_before": "2026-03-15", "ordering": "name"}
        )
    ) == ["Deal 1", "Deal 2"]
    assert names(agent.get(URL, {"contact": str(contact.pk)})) == ["Deal 3"]
    assert names(agent.get(URL, {"search": "deal 2"})) == ["Deal 2"]
    assert agent.get(URL, {"updated_since": "2999-01-01T00:00:00Z"}).data["count"] == 0
    assert agent.get(URL, {"stage": "won"}).status_code == 400
    assert agent.get(URL, {"contact": "00000000-0000-4000-8000-000000000000"}).status_code == 400
    assert len(agent.get(URL, {"page_size": 1000}).data["results"]) == 4
    assert agent.get(URL, {"page_size": 2}).data["next"]


@pytest.mark.parametrize(
    "url",
    [
        URL,
        "/api/v1/contacts/",
        "/api/v1/activities/",
        "/api/v1/conflicts/",
        "/api/v1/sync-runs/",
        "/api/v1/connections/",
        "/api/v1/field-ownership/",
    ],
)
def test_list_query_count_does_not_grow_with_rows(agent, settings, url):
    settings.CRMSYNC = {"CONNECTIONS": {"crm": {"ADAPTER": "local"}}}

    def add(count, start):
        for index in range(start, start + count):
            contact = Contact.objects.create(name=f"C{index}", email=f"c{index}@example.com")
            deal = Opportunity.objects.create(name=f"D{index}", contact=contact)
            Activity.objects.create(opportunity=deal, subject="Call")
            Conflict.objects.create(
                connection="crm",
                entity="deal",
                object_id=deal.pk,
                field="stage",
                rule=Owner.SHARED,
                winner=Winner.LOCAL,
                reason="x",
                status=ConflictStatus.AUTO_RESOLVED,
            )
            SyncRun.objects.create(connection="crm")

    add(3, 0)
    agent.get(url)  # the first call makes the connection's row
    with CaptureQueriesContext(connection) as few:
        assert agent.get(url).status_code == 200
    add(150, 3)
    with CaptureQueriesContext(connection) as many:
        assert agent.get(url).status_code == 200
    assert len(many) == len(few)


def test_etag_and_if_match_prevent_lost_updates(agent):
    deal = Opportunity.objects.create(name="Acme")
    detail = f"{URL}{deal.pk}/"
    etag = agent.get(detail)["ETag"]
    assert agent.patch(detail, {"stage": "discovery"}, format="json", HTTP_IF_MATCH=etag).status_code == 200
    stale = agent.patch(detail, {"stage": "proposal"}, format="json", HTTP_IF_MATCH=etag)
    assert stale.status_code == 412
    deal.refresh_from_db()
    assert deal.stage == "discovery"
    fresh = agent.get(detail)["ETag"]
    assert fresh != etag
    assert agent.patch(detail, {"stage": "proposal"}, format="json", HTTP_IF_MATCH=fresh).status_code == 200


def test_if_match_guards_delete_too(agent):
    deal = Opportunity.objects.create(name="Acme")
    detail = f"{URL}{deal.pk}/"
    etag = agent.get(detail)["ETag"]
    assert agent.patch(detail, {"stage": "discovery"}, format="json").status_code == 200  # someone else
    assert agent.delete(detail, HTTP_IF_MATCH=etag).status_code == 412
    assert (
        agent.patch(detail, {"stage": "proposal"}, format="json", HTTP_IF_MATCH=f'"x", {etag}').status_code
        == 412
    )
    current = agent.get(detail)["ETag"]
    listed = f'"other", {current}'  # a list matches when one of its ETags does
    assert agent.patch(detail, {"stage": "discovery"}, format="json", HTTP_IF_MATCH=listed).status_code == 200
    deal.refresh_from_db()
    assert deal.archived is False
    assert agent.delete(detail, HTTP_IF_MATCH=agent.get(detail)["ETag"]).status_code == 204
    deal.refresh_from_db()
    assert deal.archived is True


def test_a_body_over_the_upload_limit_is_a_json_413(agent, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = agent.post(URL, {"name": "x" * 2000}, format="json")
    assert response.status_code == 413 and response["Content-Type"] == "application/json"
    assert "DATA_UPLOAD_MAX_MEMORY_SIZE" in response.json()["detail"]
    assert not Opportunity.objects.exists()


def test_values_a_connection_cannot_hold_are_a_400_naming_the_field(agent, notion_settings):
    response = agent.post(URL, {"name": "Long", "qualification": "q" * 250_000}, format="json")
    assert response.status_code == 400
    assert "cannot hold this value" in response.json()["qualification"][0]
    assert not Opportunity.objects.exists()
    deal = Opportunity.objects.create(name="Fine")
    assert agent.patch(f"{URL}{deal.pk}/", {"qualification": "𝕏" * 100_001}, format="json").status_code == 400
    assert agent.patch(f"{URL}{deal.pk}/", {"qualification": "q" * 200_000}, format="json").status_code == 200
    contact = Contact.objects.create(name="C", email="c@example.com")
    long_email = "a" * 190 + "@example.com"  # over Notion's 200 characters; Django takes it
    reply = agent.patch(f"/api/v1/contacts/{contact.pk}/", {"email": long_email}, format="json")
    assert reply.status_code == 400 and "email" in reply.json()


def test_without_a_connection_long_text_is_kept(agent, settings):
    settings.CRMSYNC = {"CONNECTIONS": {"crm": {"ADAPTER": "local"}}}
    assert (
        agent.post(URL, {"name": "Local", "qualification": "q" * 250_000}, format="json").status_code == 201
    )


def test_a_search_term_with_a_nul_is_a_400_naming_search(agent):
    response = agent.get(f"{URL}?search=%00")
    assert response.status_code == 400 and "search" in response.json()


def test_human_owned_fields_of_linked_records_are_refused(agent):
    deal = Opportunity.objects.create(name="Acme", notes="old")
    detail = f"{URL}{deal.pk}/"
    assert agent.patch(detail, {"notes": "allowed while unlinked"}, format="json").status_code == 200
    SyncLink.objects.create(connection="notion", entity="deal", local_id=deal.pk, remote_id="page")
    response = agent.patch(detail, {"notes": "new", "probability": 55}, format="json")
    assert response.status_code == 400
    assert (
        "notes" in response.data
        and "human" in str(response.data["notes"])
        and "notion" in str(response.data["notes"])
    )
    assert agent.patch(detail, {"probability": 55, "stage": "discovery"}, format="json").status_code == 200
    # A full PUT that repeats the current notes is fine.
    current = agent.get(detail).data
    assert agent.put(detail, {**current, "contact": None}, format="json").status_code == 200
    # Ownership is per connection: once notes are shared, they can be written.
    FieldOwnership.objects.create(connection="notion", entity="deal", field="notes", owner=Owner.SHARED)
    assert agent.patch(detail, {"notes": "new"}, format="json").status_code == 200


def test_accepted_writes_enter_the_outbox(agent, settings):
    settings.CRMSYNC = {"CONNECTIONS": {"crm": {"ADAPTER": "local"}}}
    response = agent.post(URL, deal_payload(), format="json")
    assert OutboxEntry.objects.filter(local_id=response.data["id"], connection="crm").exists()


def test_synced_activity_cannot_be_edited(agent):
    deal = Opportunity.objects.create(name="Acme")
    activity = Activity.objects.create(opportunity=deal, subject="Call", kind="call")
    detail = f"/api/v1/activities/{activity.pk}/"
    assert agent.patch(detail, {"subject": "Call 1"}, format="json").status_code == 200
    SyncLink.objects.create(connection="notion", entity="activity", local_id=activity.pk, remote_id="page")
    response = agent.patch(detail, {"subject": "Call 2"}, format="json")
    assert response.status_code == 400 and "append-only" in str(response.data["subject"])
    assert agent.delete(detail).status_code == 204  # archiving is local


def test_permissions_matrix(agent, viewer):
    deal = Opportunity.objects.create(name="Acme")
    detail = f"{URL}{deal.pk}/"
    anonymous = APIClient()
    assert anonymous.get(URL).status_code == 401
    assert anonymous.post(URL, deal_payload(), format="json").status_code == 401
    assert viewer.get(URL).status_code == 200
    assert viewer.get(detail).status_code == 200
    assert viewer.post(URL, deal_payload(), format="json").status_code == 403
    assert viewer.patch(detail, {"stage": "discovery"}, format="json").status_code == 403
    assert viewer.delete(detail).status_code == 403
    assert viewer.patch(
        "/api/v1/field-ownership/crm:deal:stage/", {"owner": "manual"}, format="json"
    ).status_code in (403, 404)
    assert agent.delete(detail).status_code == 204
    nobody = client_for(type(deal)._meta.apps.get_model("auth", "User").objects.create_user("nobody"))
    assert nobody.get(URL).status_code == 403


def test_conflicts_list_open_first_and_resolve(agent, viewer, notion_settings, notion_emulator):
    from crmsync.sync.engine import SyncEngine

    FieldOwnership.objects.create(connection="notion", entity="deal", field="stage", owner=Owner.MANUAL)
    deal = Opportunity.objects.create(name="Acme")
    SyncEngine("notion").run()
    deal.stage = "negotiation"
    deal.save()
    page = SyncLink.objects.get(local_id=deal.pk).remote_id
    notion_emulator.human_edit(page, {"Stage": "Closed Won", "Probability": 90})
    SyncEngine("notion").run()
    listed = agent.get("/api/v1/conflicts/").data["results"]
    assert [c["status"] for c in listed][:1] == ["open"] and len(listed) == 2
    open_id = listed[0]["id"]
    url = f"/api/v1/conflicts/{open_id}/resolve/"
    assert viewer.post(url, {"resolution": "take_remote"}, format="json").status_code == 403
    assert agent.post(url, {"resolution": "nope"}, format="json").status_code == 400
    assert agent.post(url, {"resolution": "value"}, format="json").status_code == 400
    assert agent.post(url, {"resolution": "value", "value": "won"}, format="json").status_code == 400
    resolved = agent.post(url, {"resolution": "take_remote"}, format="json")
    assert resolved.status_code == 200 and resolved.data["status"] == "resolved"
    assert resolved.data["resolved_by"] == "agent"
    assert agent.post(url, {"resolution": "take_remote"}, format="json").status_code == 400
    deal.refresh_from_db()
    assert deal.stage == "closed_won"


def test_field_ownership_list_and_update(agent, notion_settings):
    rows = agent.get("/api/v1/field-ownership/").data
    stage = next(r for r in rows if r["id"] == "notion:deal:stage")
    assert (stage["owner"], stage["default_owner"], stage["is_default"]) == ("shared", "shared", True)
    assert {r["entity"] for r in rows} == {"deal", "contact"}
    url = "/api/v1/field-ownership/notion:deal:stage/"
    updated = agent.patch(url, {"owner": "manual"}, format="json")
    assert updated.status_code == 200 and updated.data["is_default"] is False
    assert FieldOwnership.objects.get(field="stage").owner == "manual"
    assert agent.patch(url, {"owner": "boss"}, format="json").status_code == 400
    assert (
        agent.patch(
            "/api/v1/field-ownership/notion:deal:colour/", {"owner": "agent"}, format="json"
        ).status_code
        == 404
    )
    assert agent.patch(url, {"owner": "shared"}, format="json").data["is_default"] is True
    assert not FieldOwnership.objects.exists()


def test_connections_health_never_shows_the_token_and_sync_returns_202(
    agent, viewer, notion_settings, notion_emulator
):
    Opportunity.objects.create(name="Acme")
    response = agent.post("/api/v1/connections/notion/sync/")
    assert response.status_code == 202 and response.data["task_id"]
    (health,) = agent.get("/api/v1/connections/").data
    assert health["alias"] == "notion" and health["last_run"]["status"] == "success"
    assert health["last_success_at"] and health["open_conflicts"] == 0
    assert notion_emulator.token not in str(agent.get("/api/v1/connections/").content)
    assert viewer.post("/api/v1/connections/notion/sync/").status_code == 403
    assert agent.post("/api/v1/connections/hubspot/sync/").status_code == 404
    assert agent.get("/api/v1/sync-runs/").data["results"][0]["created_remote"] == 1


def test_openapi_schema_and_offline_docs(agent):
    client = agent
    schema = client.get("/api/schema/?format=json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert {
        "/api/v1/opportunities/",
        "/api/v1/conflicts/{id}/resolve/",
        "/api/v1/connections/{alias}/sync/",
    } <= set(paths)
    docs = client.get("/api/docs/").content.decode()
    assert "swagger-ui" in docs and "cdn" not in docs.lower() and "unpkg" not in docs


def test_value_precision_round_trips_as_strings(agent):
    response = agent.post(URL, deal_payload(value="0.10", confidence="0.333"), format="json")
    assert (response.data["value"], response.data["confidence"]) == ("0.10", "0.333")
    assert Opportunity.objects.get().value == Decimal("0.10")


@pytest.mark.parametrize(
    ("value", "status"),
    [
        ("0382-02-23T16:57:03.26732-16:28", 200),
        ("2026-01-01T00:00:00+05:30", 200),
        ("9999-12-31T23:59:59-12:00", 400),
        ("yesterday", 400),
    ],
)
def test_updated_since_with_any_offset_is_never_a_server_error(agent, value, status):
    # Found by schemathesis: PostgreSQL cannot store a -16:28 offset; values are made UTC first.
    assert agent.get(URL, {"updated_since": value}).status_code == status
    assert agent.get("/api/v1/contacts/", {"updated_since": value}).status_code == status


# --- In any host project (DESIGN §11) ----------------------------------------------------


def external_assets(html: str) -> list[str]:
    """src/href URLs of a page that point at another host."""
    import re

    return [url for url in re.findall(r'(?:src|href)="([^"]+)"', html) if re.match(r"(https?:)?//", url)]


@pytest.fixture
def bare_host(settings):
    """A brand-new project's settings: DRF's and drf-spectacular's own defaults."""
    del settings.REST_FRAMEWORK
    del settings.SPECTACULAR_SETTINGS


def test_the_api_carries_its_own_classes_under_a_bare_host(bare_host, agent):
    assert agent.get(URL).status_code == 200  # Token authentication
    anonymous = APIClient().get(URL)
    assert anonymous.status_code == 401 and anonymous["WWW-Authenticate"] == "Token"
    schema = agent.get("/api/schema/?format=json")
    assert schema.status_code == 200, schema.content[:500]
    assert "/api/v1/conflicts/{id}/resolve/" in schema.json()["paths"]
    docs = agent.get("/api/docs/")
    assert docs.status_code == 200 and "swagger-ui" in docs.content.decode()
    assert external_assets(docs.content.decode()) == []


def test_docs_stay_offline_whatever_the_hosts_spectacular_settings(settings, agent):
    settings.SPECTACULAR_SETTINGS = {
        "SWAGGER_UI_DIST": "https://cdn.jsdelivr.net/npm/swagger-ui-dist@latest",
        "SWAGGER_UI_FAVICON_HREF": "https://cdn.example.com/favicon.png",
        "TITLE": "The host's own API",
        "POSTPROCESSING_HOOKS": [],
        "COMPONENT_SPLIT_REQUEST": True,
    }
    page = agent.get("/api/docs/").content.decode()
    assert external_assets(page) == [] and "/static/drf_spectacular_sidecar/" in page
    assert '"validatorUrl": null' in page  # no badge from swagger.io either
    schema = agent.get("/api/schema/?format=json").json()
    assert schema["info"]["title"] == "crmsync API"
    assert "ValidationError" in schema["components"]["schemas"]  # crmsync's own hook ran


def test_schema_and_docs_are_closed_to_anonymous_users_unless_opened(settings, agent):
    anonymous = APIClient()
    for url in ("/api/schema/", "/api/docs/", "/api/v1/"):
        assert anonymous.get(url).status_code == 401, url
    assert agent.get("/api/v1/").status_code == 200
    settings.CRMSYNC = {"API": {"SCHEMA_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"]}}
    assert anonymous.get("/api/schema/").status_code == 200
    assert anonymous.get("/api/docs/").status_code == 200
    assert anonymous.get(URL).status_code == 401  # the API itself stays closed


def test_api_classes_are_overridable_through_crmsync_api(settings, agent, django_user_model):
    settings.CRMSYNC = {"API": {"THROTTLE_RATES": {"user": "3/minute"}}}
    assert [agent.get(URL).status_code for _ in range(4)] == [200, 200, 200, 429]
    settings.CRMSYNC = {
        "API": {
            "PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
            "PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
            "THROTTLE_CLASSES": [],
        }
    }
    assert agent.get(URL).status_code == 403  # not staff
    admin = client_for(django_user_model.objects.create_user("boss", is_staff=True))
    listed = admin.get(URL, {"limit": 1})
    assert listed.status_code == 200 and "next" in listed.data


def test_anonymous_calls_are_throttled_too():
    anonymous = APIClient()
    answers = [anonymous.get(URL).status_code for _ in range(61)]
    assert answers[:60] == [401] * 60 and answers[60] == 429


@pytest.mark.parametrize("depth", [33, 1500, 100_000])
def test_deeply_nested_json_is_a_400_naming_the_field(agent, depth):
    body = '{"name": "Deep", "tags": ' + "[" * depth + "]" * depth + "}"
    response = agent.generic("POST", URL, body, content_type="application/json")
    assert response.status_code == 400, response.content[:300]
    assert "Nested more than 32 levels" in str(response.data["tags"])
    listed = agent.generic("POST", URL, "[" * depth + "]" * depth, content_type="application/json")
    assert listed.status_code == 400 and "non_field_errors" in listed.data


def test_nested_json_within_the_limit_is_validated_as_usual(agent):
    response = agent.post(URL, deal_payload(tags=[[["a"]]]), format="json")
    assert response.status_code == 400 and "tags" in response.data


@pytest.mark.django_db(transaction=True)
def test_concurrent_creates_with_one_email_are_one_201_and_400s(agent):
    """20 clients create a contact with one email at once (the unique check in validation
    passes for several of them; the insert decides), three times over."""
    import threading

    token = agent._credentials["HTTP_AUTHORIZATION"]

    def create(email, index, barrier, answers):
        from django.db import connection as thread_connection

        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=token)
        barrier.wait()
        try:
            response = client.post(
                "/api/v1/contacts/", {"name": f"Ada {index}", "email": email}, format="json"
            )
            answers.append((response.status_code, response.data))
        finally:
            thread_connection.close()

    for round_ in range(3):
        email, barrier, answers = f"ada{round_}@example.com", threading.Barrier(20), []
        threads = [threading.Thread(target=create, args=(email, i, barrier, answers)) for i in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(code for code, _ in answers) == [201] + [400] * 19, answers
        assert all("already exists" in str(data["email"]) for code, data in answers if code == 400)
        assert Contact.objects.filter(email=email).count() == 1


def perms(*codenames):
    return Permission.objects.filter(content_type__app_label="crmsync", codename__in=codenames)


def test_one_permission_rule_resolves_a_conflict_in_the_api_and_the_admin(django_user_model):
    deal = Opportunity.objects.create(name="Acme")
    conflict = Conflict.objects.create(
        connection="crm",
        entity="deal",
        object_id=deal.pk,
        field="stage",
        local_value="proposal",
        remote_value="negotiation",
        rule=Owner.MANUAL,
        winner=Winner.LOCAL,
        reason="held",
        status=ConflictStatus.OPEN,
    )
    url = f"/api/v1/conflicts/{conflict.pk}/resolve/"
    adder = django_user_model.objects.create_user("adder")
    adder.user_permissions.set(perms("view_conflict", "add_conflict"))
    assert client_for(adder).post(url, {"resolution": "take_remote"}, format="json").status_code == 403
    changer = django_user_model.objects.create_user("changer")
    changer.user_permissions.set(perms("change_conflict"))
    assert client_for(changer).post(url, {"resolution": "take_remote"}, format="json").status_code == 200
    missing = "/api/v1/conflicts/999999/resolve/"
    assert client_for(adder).post(missing, {"resolution": "take_remote"}, format="json").status_code == 403


def test_one_permission_rule_starts_a_sync_in_the_api_and_the_admin(settings, django_user_model):
    settings.CRMSYNC = {"CONNECTIONS": {"crm": {"ADAPTER": "fake"}}}
    url = "/api/v1/connections/crm/sync/"
    adder = django_user_model.objects.create_user("adder")
    adder.user_permissions.set(perms("view_syncconnection", "add_syncconnection", "add_syncrun"))
    assert client_for(adder).post(url).status_code == 403
    changer = django_user_model.objects.create_user("changer")
    changer.user_permissions.set(perms("change_syncconnection"))
    assert client_for(changer).post(url).status_code == 202


def test_the_change_permission_reads_in_the_api_as_in_the_admin(settings, django_user_model, client):
    """Django's admin lets a user with only ``change_*`` see the pages; the API answered
    403 to the same user (README: the same permission for the same act)."""
    settings.CRMSYNC = {"CONNECTIONS": {"crm": {"ADAPTER": "fake"}}}
    changer = django_user_model.objects.create_user("changer", is_staff=True)
    changer.user_permissions.set(perms("change_syncconnection", "change_opportunity"))
    api = client_for(changer)
    assert api.get("/api/v1/connections/").status_code == 200
    assert api.get("/api/v1/opportunities/").status_code == 200
    assert api.get("/api/v1/conflicts/").status_code == 403  # no permission on conflicts at all
    client.force_login(changer)
    assert client.get(reverse("admin:crmsync_syncconnection_change", args=["crm"])).status_code == 200


def test_the_schema_says_what_the_api_answers(agent):
    components = agent.get("/api/schema/?format=json").json()["components"]["schemas"]
    assert components["Conflict"]["properties"]["resolved_by"].get("nullable") is True
    assert "results" not in str(
        agent.get("/api/schema/?format=json").json()["paths"]["/api/v1/connections/"]["get"]["responses"]
    )


def conforms(client, component: str, data) -> list[str]:
    """Errors of ``data`` against a component of the served schema (formats checked, as
    schemathesis checks responses)."""
    import jsonschema_rs

    def as_json_schema(node):  # OpenAPI 3.0's "nullable" in JSON Schema's words
        if isinstance(node, list):
            return [as_json_schema(item) for item in node]
        if not isinstance(node, dict):
            return node
        node = {key: as_json_schema(value) for key, value in node.items()}
        if node.pop("nullable", False) is True:
            return {"anyOf": [node, {"type": "null"}]}
        return node

    schema = client.get("/api/schema/?format=json").json()
    validator = jsonschema_rs.validator_for(
        {"$ref": f"#/components/schemas/{component}", "components": as_json_schema(schema["components"])},
        validate_formats=True,
    )
    return [error.message for error in validator.iter_errors(data)]


@pytest.mark.parametrize("email", ["ada@bücher.example", f"{'a' * 65}@example.com", "ada@example.com"])
def test_contacts_the_api_accepts_conform_to_its_schema(agent, email):
    created = agent.post("/api/v1/contacts/", {"name": "Ada", "email": email}, format="json")
    assert created.status_code == 201, created.data
    assert conforms(agent, "Contact", agent.get(f"/api/v1/contacts/{created.data['id']}/").json()) == []


def test_an_unresolved_conflict_conforms_to_the_schema(agent):
    deal = Opportunity.objects.create(name="Acme")
    conflict = Conflict.objects.create(
        connection="crm", entity="deal", object_id=deal.pk, field="stage", rule=Owner.MANUAL,
        winner=Winner.LOCAL, reason="held", status=ConflictStatus.OPEN,
    )  # fmt: skip
    data = agent.get(f"/api/v1/conflicts/{conflict.pk}/").json()
    assert data["resolved_by"] is None and conforms(agent, "Conflict", data) == []


def test_quarantined_remote_records_are_listed_and_dismissed_with_the_sync_permission(
    agent, viewer, settings
):
    from crmsync.models import QuarantinedPage

    settings.CRMSYNC = {"CONNECTIONS": {"notion": {"ADAPTER": "fake"}}}
    held = QuarantinedPage.objects.create(
        connection="notion", entity="deal", remote_id="p-1", error="bad page"
    )
    listed = viewer.get("/api/v1/quarantined-pages/?connection=notion").json()["results"]
    assert [(row["remote_id"], row["error"]) for row in listed] == [("p-1", "bad page")]
    assert viewer.get("/api/v1/connections/").json()[0]["quarantined"] == 1
    assert viewer.post(f"/api/v1/quarantined-pages/{held.pk}/dismiss/").status_code == 403
    assert agent.post(f"/api/v1/quarantined-pages/{held.pk}/dismiss/").status_code == 204
    assert not QuarantinedPage.objects.exists()


def test_the_same_tags_in_another_order_are_no_edit_of_a_crm_owned_field(agent, settings, notion_emulator):
    from crmsync.models import SyncLink
    from crmsync.testing.pytest_plugin import notion_options

    settings.CRMSYNC = {
        "CONNECTIONS": {"notion": {"ADAPTER": "notion", "OPTIONS": notion_options(notion_emulator)}}
    }
    deal = Opportunity.objects.create(name="Acme", tags=["a", "b"])
    SyncLink.objects.create(connection="notion", entity="deal", local_id=deal.pk, remote_id="p", base={})
    response = agent.patch(f"{URL}{deal.pk}/", {"tags": ["b", "a"]}, format="json")
    assert response.status_code == 200, response.json()
    assert agent.patch(f"{URL}{deal.pk}/", {"tags": ["c"]}, format="json").status_code == 400


def test_a_deal_is_restored_through_the_api(agent):
    deal = Opportunity.objects.create(name="Acme")
    assert agent.delete(f"{URL}{deal.pk}/").status_code == 204
    response = agent.patch(f"{URL}{deal.pk}/", {"archived": False}, format="json")
    assert response.status_code == 200 and response.json()["archived"] is False
    deal.refresh_from_db()
    assert not deal.archived


# --- At scale (issue 15): filters cost the same per request whatever the data size.

FILTERED = [
    "?stage=negotiation",
    "?stage=negotiation&stage=proposal",
    "?value_min=10&value_max=90",
    "?close_date_after=2027-01-01&close_date_before=2027-12-31",
    "?updated_since=2020-01-01T00:00:00Z",
    "?search=D1",
    "?ordering=name",
    "?page=2&page_size=5",
]


def bulk_deals(count, start=0):
    stages = ["negotiation", "proposal", "discovery"]
    Opportunity.objects.bulk_create(
        [
            Opportunity(
                name=f"D{i}", stage=stages[i % 3], value=i % 100, close_date=dt.date(2027, 1 + i % 12, 1)
            )
            for i in range(start, start + count)
        ]
    )


@pytest.mark.parametrize("query", FILTERED)
def test_filtered_list_query_count_does_not_grow_with_rows(agent, query):
    bulk_deals(12)
    agent.get(URL + query)
    with CaptureQueriesContext(connection) as few:
        assert agent.get(URL + query).status_code == 200
    bulk_deals(300, start=12)
    with CaptureQueriesContext(connection) as many:
        assert agent.get(URL + query).status_code == 200
    assert len(many) == len(few), [q["sql"] for q in many.captured_queries]


def test_stage_filter_selects_no_distinct(agent):
    """A filter on the deal's own column cannot duplicate rows: django-filter's default
    ``distinct=True`` made it SELECT DISTINCT over every column, and COUNT(*) over that."""
    bulk_deals(9)
    with CaptureQueriesContext(connection) as captured:
        response = agent.get(URL + "?stage=negotiation&stage=proposal")
    assert response.status_code == 200 and response.json()["count"] == 6
    deal_queries = [q["sql"] for q in captured.captured_queries if "crmsync_opportunity" in q["sql"]]
    assert deal_queries and not [sql for sql in deal_queries if "DISTINCT" in sql]

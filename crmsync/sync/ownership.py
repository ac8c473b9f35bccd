"""Who owns each synced field on a connection: DESIGN §2 defaults, overridden per row."""

from django.core.exceptions import ValidationError

from ..choices import Owner
from ..conf import app_settings
from ..entities import ENTITIES
from ..exceptions import ConfigurationError


def default_owners(entity: str) -> dict[str, Owner]:
    return {spec.name: Owner(spec.owner) for spec in ENTITIES[entity].fields}


def owners(connection: str, entity: str) -> dict[str, Owner]:
    """{field: owner} for one connection and entity (one query)."""
    from ..models import FieldOwnership

    result = default_owners(entity)
    for field, owner in FieldOwnership.objects.filter(connection=connection, entity=entity).values_list(
        "field", "owner"
    ):
        if field in result:
            result[field] = Owner(owner)
    return result


def sync_links(instance) -> list:
    """The record's SyncLinks (every connection), read once per instance: a page that asks
    for its ownership and its remote twins several times reads them in one query."""
    from ..models import SyncLink

    if instance is None or instance.pk is None:
        return []
    cached = instance.__dict__.get("_crmsync_links")
    if cached is None:
        cached = list(SyncLink.objects.filter(entity=instance.entity_name, local_id=instance.pk))
        instance.__dict__["_crmsync_links"] = cached
    return cached


def crm_owned_fields(instance) -> dict[str, str]:
    """{field: connection} for the fields a CRM owns (human) on a linked record: the CRM's
    value replaces a local edit there. Empty for an unsaved or unlinked record.

    Computed once per instance (the admin asks for it several times per page)."""
    if instance is None or instance.pk is None:
        return {}
    cached = instance.__dict__.get("_crmsync_crm_owned")
    if cached is not None:
        return cached
    entity = instance.entity_name
    owned: dict[str, str] = {}
    for alias in sorted({link.connection for link in sync_links(instance)}):
        for field, owner in owners(alias, entity).items():
            if owner == Owner.HUMAN:
                owned.setdefault(field, alias)
    instance.__dict__["_crmsync_crm_owned"] = owned
    return owned


def synced_fields(connection: str) -> dict[str, list[str]]:
    """{entity: [field, ...]} a configured connection syncs both ways."""
    from ..registry import connections

    adapter = connections[connection]
    return {
        entity: adapter.mapped_fields(entity)
        for entity in sorted(adapter.entities)
        if ENTITIES[entity].two_way
    }


def validate_ownership(connection: str, entity: str, field: str) -> None:
    """Raise ValidationError unless ``field`` of ``entity`` is synced by ``connection``."""
    if connection not in app_settings.CONNECTIONS:
        raise ValidationError({"connection": f"No connection {connection!r} in CRMSYNC['CONNECTIONS']."})
    try:
        fields = synced_fields(connection)
    except ConfigurationError as err:
        raise ValidationError({"connection": str(err)}) from err
    if entity not in fields:
        raise ValidationError({"entity": f"Connection {connection!r} does not sync {entity} records."})
    if field not in fields[entity]:
        raise ValidationError({"field": f"{entity}.{field} is not a field connection {connection!r} syncs."})


def ensure_rows() -> dict[str, str]:
    """One FieldOwnership row per synced field of every configured connection (so the
    admin can show and edit them all in one table); existing rows are kept. Returns
    {alias: why} for connections that cannot be built (the system check names them):
    the others still get their rows."""
    from ..models import FieldOwnership

    rows, broken = [], {}
    for alias in app_settings.CONNECTIONS:
        try:
            fields = synced_fields(alias)
        except ConfigurationError as err:
            broken[alias] = str(err)
            continue
        rows += [
            FieldOwnership(connection=alias, entity=entity, field=field, owner=default_owners(entity)[field])
            for entity, names in fields.items()
            for field in names
        ]
    FieldOwnership.objects.bulk_create(rows, ignore_conflicts=True)
    return broken

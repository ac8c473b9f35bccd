"""Who owns each synced field on a connection: DESIGN §2 defaults, overridden per row."""

from ..choices import Owner
from ..entities import ENTITIES


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

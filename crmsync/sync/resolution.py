"""Staff resolve a conflict; the next sync applies their choice to both sides."""

from django.db import transaction
from django.utils import timezone

from ..choices import ConflictStatus, Winner
from ..entities import ENTITIES, EntitySpec
from ..exceptions import MappingError
from ..models import Conflict, SyncLink
from ..outbox import mark_dirty
from ..records import apply_values, fit_remote_values, local_values
from .conflicts import INVALID


class Resolution:
    KEEP_LOCAL = "keep_local"
    TAKE_REMOTE = "take_remote"
    VALUE = "value"
    CHOICES = (KEEP_LOCAL, TAKE_REMOTE, VALUE)


# The JSON types a value of each field kind may arrive as.
_JSON_TYPES = {
    "text": (str,),
    "email": (str,),
    "choice": (str,),
    "date": (str,),
    "datetime": (str,),
    "number": (int, float, str),
    "tags": (list,),
}


def resolution_value(entity: EntitySpec, field: str, value):
    """``value`` (as staff or an API client sent it) in the field's normal form.

    Raises MappingError naming the field when it is not of the field's type or the
    local field's validators refuse it."""
    kind = entity.field(field).kind
    if value is not None and (isinstance(value, bool) or not isinstance(value, _JSON_TYPES[kind])):
        raise MappingError(f"{field}: expected a {kind} value, got {type(value).__name__}", field=field)
    if isinstance(value, list) and not all(isinstance(tag, str) for tag in value):
        raise MappingError(f"{field}: tags must be a list of strings", field=field)
    model_field = entity.get_model()._meta.get_field(field)
    if value in (None, "", []) and not getattr(model_field, "null", True) and not model_field.blank:
        raise MappingError(f"{field}: this field cannot be empty", field=field)
    fitted, invalid = fit_remote_values(entity, {field: value})
    if field in invalid:
        raise MappingError(invalid[field], field=field)
    return fitted[field]


def resolve_conflict(conflict: Conflict, choice: str, *, value=None, user=None) -> Conflict:
    """Resolve a conflict the way staff chose; the next sync applies it to both sides.

    ``keep_local`` pushes the local value, ``take_remote`` writes the remote value
    locally, ``value`` sets both sides to ``value``. The local write is an ordinary save
    (it enters the outbox). For an open conflict the remote still holds its remote value,
    so the link's base becomes that value and whatever differs from it is pushed; an
    auto-resolved conflict was already applied, so the base (what the remote holds now)
    is kept. Raises MappingError (naming the field) for a value the field cannot hold and
    ValueError for a conflict already resolved or an unknown choice.
    """
    if choice not in Resolution.CHOICES:
        raise ValueError(f"Unknown resolution {choice!r}: use one of {', '.join(Resolution.CHOICES)}.")
    if conflict.status == ConflictStatus.RESOLVED:
        raise ValueError("This conflict is already resolved.")
    entity = ENTITIES[conflict.entity]
    field = conflict.field
    if field not in entity.field_names:
        raise ValueError(f"Field {field!r} cannot be resolved here; edit the record instead.")
    queryset = entity.get_model()._default_manager.all()
    if conflict.entity == "deal":
        queryset = queryset.select_related("contact")
    instance = queryset.get(pk=conflict.object_id)
    if choice == Resolution.KEEP_LOCAL:
        target = local_values(instance)[field]
    elif choice == Resolution.TAKE_REMOTE:
        if conflict.reason.startswith(INVALID):
            raise MappingError(f"{field}: the remote value is not one this field can hold", field=field)
        target = resolution_value(entity, field, conflict.remote_value)
    else:
        target = resolution_value(entity, field, value)
    with transaction.atomic():
        if local_values(instance)[field] != target:
            apply_values(instance, {field: target})
            instance.save()
        link = SyncLink.objects.filter(
            connection=conflict.connection, entity=conflict.entity, local_id=instance.pk
        ).first()
        if link is not None and conflict.status == ConflictStatus.OPEN:
            # The remote holds remote_value: whatever differs from it is pushed next run.
            link.base = {**link.base, field: conflict.remote_value}
            link.save(update_fields=["base", "updated_at"])
            mark_dirty(conflict.entity, [instance.pk])
        conflict.status = ConflictStatus.RESOLVED
        conflict.winner = Winner.REMOTE if target == conflict.remote_value else Winner.LOCAL
        conflict.reason = f"resolved by staff: {choice.replace('_', ' ')}"[:255]
        conflict.resolved_by = user if user is not None and user.is_authenticated else None
        conflict.resolved_at = timezone.now()
        conflict.save()
    return conflict

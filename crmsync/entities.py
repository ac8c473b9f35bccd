"""What is synced: the entities, their fields, each field's kind and default owner.

Everything that compares values (the merge, the outbox, adapters) goes through
``normal_form`` so that 1200.50 and 1200.5, "" and None, or two orders of the
same tags are one value (DESIGN §3).
"""

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation
from functools import cached_property

from .choices import Owner


@dataclass(frozen=True)
class FieldSpec:
    name: str
    kind: str  # text | number | date | datetime | choice | tags | email
    owner: Owner  # the default owner (DESIGN §2)
    # Numbers: the local column's decimal places; values are compared and stored at this
    # precision (DESIGN §7), so a remote 1234.5678 is the local 1234.57. None: as given.
    decimal_places: int | None = None


@dataclass(frozen=True)
class EntitySpec:
    name: str
    model: str  # app_label.ModelName
    fields: tuple[FieldSpec, ...]
    two_way: bool = True  # activities are append-only outbound

    def field(self, name: str) -> FieldSpec:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"{self.name} has no synced field {name!r}") from None

    @cached_property
    def _by_name(self) -> dict[str, FieldSpec]:
        return {spec.name: spec for spec in self.fields}

    @cached_property
    def field_names(self) -> tuple[str, ...]:
        """The synced fields' names, in order (read per record per field: computed once)."""
        return tuple(spec.name for spec in self.fields)

    def get_model(self):
        """The model class, looked up in the app registry once (read per field of every
        record: the lookup cost more than the validation it served, issue 15)."""
        model = self.__dict__.get("_model")
        if model is None:
            from django.apps import apps

            model = apps.get_model(self.model)
            object.__setattr__(self, "_model", model)  # a frozen dataclass, cached like _by_name
        return model


DEAL = EntitySpec(
    "deal",
    "crmsync.Opportunity",
    (
        FieldSpec("name", "text", Owner.SHARED),
        FieldSpec("stage", "choice", Owner.SHARED),
        FieldSpec("value", "number", Owner.SHARED, decimal_places=2),
        FieldSpec("close_date", "date", Owner.SHARED),
        FieldSpec("probability", "number", Owner.AGENT, decimal_places=0),
        FieldSpec("confidence", "number", Owner.AGENT, decimal_places=3),
        FieldSpec("qualification", "text", Owner.AGENT),
        FieldSpec("notes", "text", Owner.HUMAN),
        FieldSpec("tags", "tags", Owner.HUMAN),
        # Synced as the contact's email; the CRM's "Contact Email".
        FieldSpec("contact", "email", Owner.SHARED),
    ),
)
CONTACT = EntitySpec(
    "contact",
    "crmsync.Contact",
    (
        FieldSpec("name", "text", Owner.SHARED),
        FieldSpec("email", "email", Owner.SHARED),
        FieldSpec("phone", "text", Owner.SHARED),
        FieldSpec("company", "text", Owner.SHARED),
        FieldSpec("title", "text", Owner.SHARED),
    ),
)
ACTIVITY = EntitySpec(
    "activity",
    "crmsync.Activity",
    (
        FieldSpec("subject", "text", Owner.SHARED),
        FieldSpec("kind", "choice", Owner.SHARED),
        FieldSpec("body", "text", Owner.SHARED),
        FieldSpec("occurred_at", "datetime", Owner.SHARED),
        # The deal's sync id; adapters relate the activity to that deal's remote record.
        FieldSpec("opportunity", "text", Owner.SHARED),
    ),
    two_way=False,
)
ENTITIES = {spec.name: spec for spec in (DEAL, CONTACT, ACTIVITY)}


# Wide enough for any double (Notion's numbers): quantizing never fails for lack of digits.
_WIDE = Context(prec=400, rounding=ROUND_HALF_EVEN, Emax=999_999, Emin=-999_999)


def normal_form(kind: str, value, decimal_places: int | None = None):
    """The one comparable, JSON-safe form of a field value (None for empty).

    ``decimal_places`` (numbers): round to that many places first (half to even, as
    ``records`` fits a value to its DecimalField).
    """
    if value is None or value == "" or value == [] or value == ():
        return None
    if kind == "number":
        try:
            number = Decimal(str(value))
        except InvalidOperation as err:
            raise ValueError(f"{value!r} is not a number") from err
        if not number.is_finite():
            raise ValueError(f"{value!r} is not a number")
        if decimal_places is not None:
            number = number.quantize(Decimal(1).scaleb(-decimal_places), context=_WIDE)
        if number.is_zero():
            number = Decimal(0)  # no "-0"
        # normalize() turns 1200.50 into 1.2005E+3; format "f" gives it back as 1200.5
        return format(number.normalize(_WIDE), "f")
    if kind == "date":
        if isinstance(value, dt.datetime):
            value = value.date()
        return value.isoformat() if isinstance(value, dt.date) else str(value)[:10]
    if kind == "datetime":
        if isinstance(value, str):
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if kind == "tags":
        tags = sorted({str(tag).strip() for tag in value if str(tag).strip()})
        return tags or None
    if kind == "email":
        return str(value).strip().lower() or None
    if kind == "text":
        return str(value).replace("\r\n", "\n")
    return str(value)


def normal_values(entity: EntitySpec, values: dict) -> dict:
    """normal_form for every synced field present in ``values``."""
    return {
        name: normal_form(entity.field(name).kind, value, entity.field(name).decimal_places)
        for name, value in values.items()
        if name in entity.field_names
    }

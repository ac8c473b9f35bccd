"""Translate between model instances and normalized values (``entities.normal_form``)."""

import datetime as dt
from decimal import ROUND_HALF_EVEN, Decimal

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import models

from .entities import EntitySpec, normal_form
from .exceptions import MappingError


def local_values(instance) -> dict:
    """The normalized synced values of a model instance.

    For deals, select_related("contact") the queryset: the contact is read by email.
    """
    entity = instance.entity()
    values = {}
    for spec in entity.fields:
        if entity.name == "deal" and spec.name == "contact":
            value = instance.contact.email if instance.contact_id else None
        elif entity.name == "activity" and spec.name == "opportunity":
            value = str(instance.opportunity_id)
        else:
            value = getattr(instance, spec.name)
        values[spec.name] = normal_form(spec.kind, value)
    return values


def _to_python(entity, name: str, value):
    kind = entity.field(name).kind
    if value is None:
        return None
    if kind == "number":
        return Decimal(value)
    if kind == "date":
        return dt.date.fromisoformat(value)
    if kind == "datetime":
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value


def apply_values(instance, values: dict) -> None:
    """Set normalized ``values`` on an instance (not saved) and validate them.

    Raises MappingError naming the field when a value does not fit the model.
    """
    entity = instance.entity()
    for name, value in values.items():
        try:
            python = _to_python(entity, name, value)
        except (ValueError, TypeError, ArithmeticError) as err:
            raise MappingError(
                f"{name}: {value!r} is not a valid {entity.field(name).kind}", field=name
            ) from err
        if entity.name == "deal" and name == "contact":
            instance.contact = contact_for_email(python) if python else None
            continue
        if entity.name == "activity" and name == "opportunity":
            instance.opportunity_id = python
            continue
        field = instance._meta.get_field(name)
        if python is None and not field.null:
            # A required field emptied remotely takes its default (which is then pushed).
            python = field.get_default() if field.has_default() else ""
        if name == "probability" and python is not None:
            if python != python.to_integral_value():
                raise MappingError(f"probability must be a whole number, got {value}", field=name)
            python = int(python)
        if name == "tags" and python is not None:
            python = list(python)
        setattr(instance, name, python)
    try:
        instance.clean_fields(exclude=[f.name for f in instance._meta.fields if f.name not in values])
        instance.clean()
    except ValidationError as err:
        field, messages = next(iter(err.message_dict.items()))
        raise MappingError(f"{field}: {' '.join(messages)}", field=field) from err


def contact_for_email(email: str):
    """The contact with this email (case-insensitive), created when there is none."""
    from .models import Contact
    from .outbox import applying_remote_changes

    contact = Contact.objects.filter(email__iexact=email).first()
    if contact is None:
        contact = Contact(name=email.split("@")[0], email=email)
        # A new local record: every connection that syncs contacts gets it.
        with applying_remote_changes(None):
            contact.save()
    return contact


def fit_remote_values(entity: EntitySpec, values: dict) -> tuple[dict, dict[str, str]]:
    """Remote normalized ``values`` as the local fields hold them, and the ones they cannot.

    Returns ``(fitted, invalid)``: numbers are rounded to the local field's decimal
    places (DESIGN §7: compared and stored at the local precision); an empty value of a
    required field reads as its default (so a page without a Stage is not "changed" to
    nothing, and the default is not pushed back); ``invalid`` maps each field whose value
    the local field's validators refuse to the reason. Values that are not plain
    (``Unmapped``) pass through. No side effects: no contact is created.
    """
    fitted, invalid = {}, {}
    for name, value in values.items():
        if name not in entity.field_names or not _is_plain(value):
            fitted[name] = value
            continue
        try:
            fitted[name] = _fit(entity, name, value)
        except MappingError as err:
            invalid[name] = str(err)
    return fitted, invalid


UNTITLED = "Untitled"


def is_required(entity: EntitySpec, name: str) -> bool:
    """Whether a record cannot exist without a usable value of this field (no default,
    not nullable, not blank): a new remote record whose value it refuses is not imported."""
    if name not in entity.field_names or (entity.name, name) in (
        ("deal", "contact"),
        ("activity", "opportunity"),
    ):
        return False
    field = entity.get_model()._meta.get_field(name)
    return not field.null and not field.blank and not field.has_default()


def stand_in(entity: EntitySpec, name: str):
    """What a new record holds for a required field whose remote value its validators
    refuse: the empty value's reading ("Untitled" for a title), or None when the field
    has none (the record cannot be imported)."""
    try:
        return _fit(entity, name, None)
    except MappingError:
        return None


def _is_plain(value) -> bool:
    return value is None or isinstance(value, str | int | float | Decimal | list | tuple)


def _fit(entity: EntitySpec, name: str, value):
    """The normal form of ``value`` as the local field holds it; MappingError if it can't."""
    kind = entity.field(name).kind
    if entity.name == "activity" and name == "opportunity":
        return value
    if entity.name == "deal" and name == "contact":
        if value is not None:
            _check(lambda: validate_email(value), name, value)
        return value
    field = entity.get_model()._meta.get_field(name)
    if value is None and not field.null:
        if field.has_default():
            return normal_form(kind, field.get_default())
        # A required text without default (a title): what Notion shows for an empty one.
        return normal_form(kind, UNTITLED if not field.blank else "")
    if value is None:
        return None
    try:
        python = _to_python(entity, name, value)
    except (ValueError, TypeError, ArithmeticError) as err:
        raise MappingError(f"{name}: {value!r} is not a valid {kind}", field=name) from err
    if isinstance(field, models.DecimalField):
        python = _check(
            lambda: python.quantize(Decimal(1).scaleb(-field.decimal_places), rounding=ROUND_HALF_EVEN),
            name,
            value,
        )
    elif isinstance(field, models.IntegerField) and python != python.to_integral_value():
        raise MappingError(f"{name}: {value} is not a whole number", field=name)
    if isinstance(python, str) and "\x00" in python:
        raise MappingError(f"{name}: the text contains a NUL character", field=name)
    if kind == "tags":
        if not all(isinstance(tag, str) and "," not in tag and "\x00" not in tag for tag in python):
            raise MappingError(f"{name}: tags must be strings without commas or NUL characters", field=name)
    else:
        checked = int(python) if isinstance(field, models.IntegerField) else python
        if field.choices and checked not in {choice for choice, _ in field.flatchoices}:
            raise MappingError(f"{name}: {value!r} is not a valid choice", field=name)
        _check(lambda: field.run_validators(checked), name, value)
    return normal_form(kind, python)


def _check(validate, name: str, value):
    try:
        return validate()
    except ValidationError as err:
        raise MappingError(f"{name}: {value!r}: {' '.join(err.messages)}", field=name) from err
    except ArithmeticError as err:  # quantize() of a number too large for the context
        raise MappingError(f"{name}: {value!r} is out of range", field=name) from err

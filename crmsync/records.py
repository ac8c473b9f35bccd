"""Translate between model instances and normalized values (``entities.normal_form``)."""

import datetime as dt
from decimal import Decimal

from django.core.exceptions import ValidationError

from .entities import normal_form
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
    from .sync.outbox import applying_remote_changes

    contact = Contact.objects.filter(email__iexact=email).first()
    if contact is None:
        contact = Contact(name=email.split("@")[0], email=email)
        # A new local record: every connection that syncs contacts gets it.
        with applying_remote_changes(None):
            contact.save()
    return contact

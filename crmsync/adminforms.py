"""Forms and value formatting of the admin: tags as a list, conflict values as values,
the custom-value input typed by field, synced activities read-only in the deal's inline."""

from typing import Any

from django import forms

from . import rules
from .entities import ENTITIES
from .models import Activity
from .sync.engine import Resolution

EMPTY = "—"


class TagsField(forms.CharField):
    """A list of tags typed as "a, b" (a tag cannot contain a comma)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("help_text", "Comma-separated, e.g. enterprise, emea.")
        kwargs.setdefault("widget", forms.TextInput(attrs={"size": 60}))
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        return ", ".join(value) if isinstance(value, list | tuple) else value

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        text = super().to_python(value) or ""
        return [tag.strip() for tag in text.split(",") if tag.strip()]


def format_tags(tags: Any) -> str:
    return ", ".join(str(tag) for tag in tags) if tags else EMPTY


def choices_of(entity: str, field: str) -> list[tuple[str, str]]:
    model = ENTITIES[entity].get_model()
    try:
        return list(model._meta.get_field(field).choices or [])
    except Exception:  # a synced field without a model field of that name
        return []


def display_value(entity: str, field: str, value: Any) -> str:
    """A stored (normalized) value as staff read it: 25 not "25", Closed Won not
    "closed_won", tags as a list."""
    if value is None or value == "" or value == []:
        return EMPTY
    if isinstance(value, list):
        return format_tags(value)
    labels = dict(choices_of(entity, field))
    if isinstance(value, str) and value in labels:
        return str(labels[value])
    return str(value)


def field_kind(entity: str, field: str) -> str:
    try:
        return ENTITIES[entity].field(field).kind
    except KeyError:
        return "text"


def value_input(entity: str, field: str, initial: Any = None) -> str:
    """The HTML input for a value of one's own, typed by the field's kind, filled with
    ``initial`` (the local value) to start from."""
    kind = field_kind(entity, field)
    attrs = {"aria-label": "value", "id": "resolve-value"}  # the name comes from render()
    if isinstance(initial, list):
        initial = ", ".join(str(item) for item in initial)
    if kind == "choice":
        return forms.Select(choices=choices_of(entity, field)).render("value", initial, attrs)
    widget = {
        "number": forms.NumberInput(attrs={"step": "any"}),
        "date": forms.DateInput(attrs={"type": "date"}),
        "datetime": forms.DateTimeInput(attrs={"type": "datetime-local"}),
        "email": forms.EmailInput(),
        "tags": forms.TextInput(attrs={"placeholder": "a, b", "size": 40}),
    }.get(kind, forms.TextInput(attrs={"size": 40}))
    return widget.render("value", initial, attrs)


class ResolveForm(forms.Form):
    resolution = forms.ChoiceField(choices=[(c, c) for c in Resolution.CHOICES])
    value = forms.CharField(required=False, strip=True)

    def parsed_value(self, entity: str, field: str) -> Any:
        """The typed input as the engine takes it: tags split, empty as None."""
        raw = self.cleaned_data.get("value", "")
        if raw == "":
            return None
        if field_kind(entity, field) == "tags":
            return [tag.strip() for tag in raw.split(",") if tag.strip()]
        return raw


class SyncedModelForm(forms.ModelForm):
    """A deal, contact or activity form: a changed value a configured CRM connection
    cannot hold is a field error (``crmsync.rules.crm_refusals``, as in the API)."""

    def _post_clean(self) -> None:
        super()._post_clean()  # type: ignore[misc]  # builds the instance (not in the stubs)
        for field, message in self.instance.crm_refusals().items():
            self.add_error(field if field in self.fields else None, message)


class ActivityInlineForm(SyncedModelForm):
    """A row of the deal's Activities inline: a synced activity's fields are disabled
    (the browser cannot change them and the server ignores what is posted), the same
    rule as the API's (``crmsync.rules``); archiving stays allowed."""

    class Meta:
        model = Activity
        fields = ["kind", "subject", "occurred_at", "body", "archived"]
        widgets = {
            "subject": forms.TextInput(attrs={"size": 28}),
            "body": forms.Textarea(attrs={"rows": 2, "cols": 28}),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in rules.frozen_fields(self.instance):
            if name in self.fields:
                self.fields[name].disabled = True
                self.fields[name].help_text = "Pushed to the CRM: activities cannot be edited."

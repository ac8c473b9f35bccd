"""Serializers of the REST API. Model validation (ranges, choices) comes from the model
fields; the sync's rules (CRM-owned fields, append-only activities) are checked here."""

from typing import Any

from django.core.validators import EmailValidator, validate_email
from django.db import models
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .. import rules
from ..choices import Owner
from ..entities import normal_form
from ..models import Activity, Conflict, Contact, Opportunity, QuarantinedPage, SyncRun
from ..sync.engine import Resolution
from ..sync.ownership import crm_owned_fields


@extend_schema_field(
    {
        "type": "string",
        "enum": list(Owner.values),
        "description": "\n".join(f"* `{v}` - {label}" for v, label in Owner.choices),
    },
    component_name="OwnerEnum",
)
class OwnerField(serializers.ChoiceField):
    """A field owner (DESIGN §2). One schema component for every field holding one, so the
    schema needs no ENUM_NAME_OVERRIDES in the host's SPECTACULAR_SETTINGS."""

    def __init__(self, **kwargs):
        super().__init__(choices=Owner.choices, **kwargs)


def refuse_what_crms_cannot_hold(serializer: Any, attrs: dict) -> None:
    """400 naming each new or changed value a configured CRM connection would refuse."""
    instance = serializer.instance
    changed = {
        name: value
        for name, value in attrs.items()
        if instance is None or getattr(instance, name, None) != value
    }
    refused = rules.crm_refusals(serializer.Meta.model, changed)
    if refused:
        raise serializers.ValidationError(refused)


class SyncedModelSerializer(serializers.ModelSerializer):
    def validate(self, attrs):
        attrs = super().validate(attrs)
        refuse_what_crms_cannot_hold(self, attrs)
        if self.instance is not None:
            errors = {}
            entity = self.instance.entity()
            for field, alias in crm_owned_fields(self.instance).items():
                kind = entity.field(field).kind
                # Compared in the normal form: the same tags in another order are no change.
                if field in attrs and normal_form(kind, attrs[field]) != normal_form(
                    kind, getattr(self.instance, field)
                ):
                    errors[field] = (
                        f"{field} is owned by the CRM (owner: human) on connection {alias!r}: "
                        "change it in the CRM; a local edit would be replaced."
                    )
            if errors:
                raise serializers.ValidationError(errors)
        return attrs


def validate_email_address(value: str) -> None:
    """Django's EmailValidator, as a plain function: drf-spectacular documents an
    EmailValidator as JSON Schema's `email` format, which refuses addresses Django
    accepts and stores (international domains, local parts over 64 characters)."""
    validate_email(value)


@extend_schema_field({"type": "string", "description": "An email address (as Django validates it)."})
class EmailField(serializers.EmailField):
    """An email as Django validates it, documented as a plain string."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.validators = [
            validate_email_address if isinstance(v, EmailValidator) else v for v in self.validators
        ]


class ContactSerializer(SyncedModelSerializer):
    serializer_field_mapping = {
        **SyncedModelSerializer.serializer_field_mapping,
        models.EmailField: EmailField,
    }

    class Meta:
        model = Contact
        fields = ["id", "name", "email", "phone", "company", "title", "archived", "created_at", "updated_at"]
        # archived: false restores (DELETE archives); the sync restores the CRM's record too.
        read_only_fields = ["id", "created_at", "updated_at"]

    def validate_email(self, value):
        value = (value or "").strip() or None
        if value:
            others = Contact.objects.filter(email__iexact=value)
            if self.instance is not None:
                others = others.exclude(pk=self.instance.pk)
            if others.exists():
                raise serializers.ValidationError("A contact with this email already exists.")
        return value


class ContactField(serializers.PrimaryKeyRelatedField):
    """A contact by id. The queryset is a class attribute: DRF deep-copies a field's
    arguments for every serializer, and copying a queryset is not free."""

    queryset = Contact.objects.all()


class OpportunitySerializer(SyncedModelSerializer):
    tags = serializers.ListField(
        child=serializers.CharField(max_length=100, allow_blank=False), required=False, max_length=100
    )
    contact = ContactField(allow_null=True, required=False, pk_field=serializers.UUIDField())

    class Meta:
        model = Opportunity
        fields = [
            "id",
            "name",
            "stage",
            "value",
            "currency",
            "close_date",
            "probability",
            "confidence",
            "qualification",
            "notes",
            "tags",
            "contact",
            "archived",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]
        extra_kwargs = {"value": {"coerce_to_string": True}, "confidence": {"coerce_to_string": True}}

    def validate_tags(self, tags):
        bad = [tag for tag in tags if "," in tag]
        if bad:
            raise serializers.ValidationError(f"A tag cannot contain a comma: {', '.join(bad)}.")
        return tags


class ActivitySerializer(serializers.ModelSerializer):
    opportunity = serializers.PrimaryKeyRelatedField(
        queryset=Opportunity.objects.all(), pk_field=serializers.UUIDField()
    )

    class Meta:
        model = Activity
        fields = [
            "id",
            "opportunity",
            "kind",
            "subject",
            "body",
            "occurred_at",
            "archived",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "archived", "created_at", "updated_at"]

    def validate(self, attrs):
        attrs = super().validate(attrs)
        refuse_what_crms_cannot_hold(self, attrs)
        frozen = rules.frozen_activity_edits(self.instance, attrs) if self.instance is not None else []
        if frozen:
            raise serializers.ValidationError(
                {
                    f: "This activity was pushed to the CRM: activities are append-only and cannot be edited."
                    for f in frozen
                }
            )
        return attrs


class ConflictSerializer(serializers.ModelSerializer):
    rule = OwnerField(read_only=True)
    resolved_by: "serializers.SlugRelatedField[Any]" = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True, help_text="null until resolved by staff"
    )

    class Meta:
        model = Conflict
        fields = [
            "id",
            "connection",
            "entity",
            "object_id",
            "record_name",
            "field",
            "base_value",
            "local_value",
            "remote_value",
            "rule",
            "winner",
            "reason",
            "local_time",
            "remote_time",
            "status",
            "resolved_by",
            "resolved_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class ResolveSerializer(serializers.Serializer):
    resolution = serializers.ChoiceField(choices=Resolution.CHOICES)
    value = serializers.JSONField(
        required=False, allow_null=True, help_text="The value to set, with resolution=value."
    )

    def validate(self, attrs):
        if attrs["resolution"] == Resolution.VALUE and "value" not in attrs:
            raise serializers.ValidationError({"value": "This field is required when resolution is 'value'."})
        return attrs


class FieldOwnershipSerializer(serializers.Serializer):
    id = serializers.CharField(read_only=True, help_text="connection:entity:field")
    connection = serializers.CharField(read_only=True)
    entity = serializers.CharField(read_only=True)
    field = serializers.CharField(read_only=True)
    owner = OwnerField()
    default_owner = serializers.CharField(read_only=True)
    is_default = serializers.BooleanField(read_only=True)


class QuarantinedPageSerializer(serializers.ModelSerializer):
    class Meta:
        model = QuarantinedPage
        fields = [
            "id",
            "connection",
            "entity",
            "remote_id",
            "local_id",
            "error",
            "attempts",
            "first_failed_at",
            "last_failed_at",
        ]
        read_only_fields = fields


class SyncRunSerializer(serializers.ModelSerializer):
    duration = serializers.FloatField(read_only=True)

    class Meta:
        model = SyncRun
        fields = [
            "id",
            "connection",
            "started_at",
            "finished_at",
            "duration",
            "status",
            *SyncRun.COUNTS,
            "requests",
            "error_summary",
        ]
        read_only_fields = fields


class ConnectionSerializer(serializers.Serializer):
    """A configured connection and its health; never its options (they hold the token)."""

    alias = serializers.CharField()
    adapter = serializers.CharField()
    entities = serializers.ListField(child=serializers.CharField())
    last_success_at = serializers.DateTimeField(allow_null=True)
    last_error = serializers.CharField(allow_blank=True)
    open_conflicts = serializers.IntegerField()
    quarantined = serializers.IntegerField()
    pending = serializers.IntegerField(help_text="Records waiting in the outbox.")
    blocked_fields = serializers.DictField(
        child=serializers.DictField(child=serializers.CharField()),
        help_text="{entity: {field: why}}: fields that do not sync because the CRM's schema changed.",
    )
    deferred_until = serializers.DateTimeField(
        allow_null=True, help_text="The CRM asked to wait: no request is sent before this time."
    )
    last_run = SyncRunSerializer(allow_null=True)


class SyncStartedSerializer(serializers.Serializer):
    connection = serializers.CharField()
    task_id = serializers.CharField()

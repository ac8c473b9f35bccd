"""Staff screens: deals, contacts and activities, and the state the sync keeps."""

from django.contrib import admin, messages

from .choices import Owner
from .models import (
    Activity,
    Conflict,
    Contact,
    FieldOwnership,
    Opportunity,
    OutboxEntry,
    SyncLink,
    SyncRun,
)
from .sync.ownership import owners


class ArchiveInsteadOfDeleteMixin:
    """Deleting a record in the admin archives it: the sync never hard-deletes (DESIGN §1)."""

    actions = ["archive_selected", "restore_selected"]

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def delete_model(self, request, obj):
        obj.archived = True
        obj.save()

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)

    def _set_archived(self, request, queryset, archived):
        count = 0
        for obj in queryset.filter(archived=not archived):
            obj.archived = archived
            obj.save()  # through save(): field times and the outbox
            count += 1
        verb = "Archived" if archived else "Restored"
        self.message_user(
            request, f"{verb} {count} {self.model._meta.verbose_name_plural}.", messages.SUCCESS
        )

    @admin.action(description="Archive selected %(verbose_name_plural)s", permissions=["change"])
    def archive_selected(self, request, queryset):
        self._set_archived(request, queryset, True)

    @admin.action(description="Restore selected %(verbose_name_plural)s", permissions=["change"])
    def restore_selected(self, request, queryset):
        self._set_archived(request, queryset, False)


def crm_owned_fields(obj) -> set[str]:
    """Human-owned fields of a record linked to a CRM: the CRM's value replaces a local edit."""
    if obj is None or obj.pk is None:
        return set()
    entity = obj.entity_name
    aliases = SyncLink.objects.filter(entity=entity, local_id=obj.pk).values_list("connection", flat=True)
    return {
        field for alias in aliases for field, owner in owners(alias, entity).items() if owner == Owner.HUMAN
    }


class ActivityInline(admin.TabularInline):
    model = Activity
    extra = 0
    fields = ["kind", "subject", "occurred_at", "body", "archived"]
    show_change_link = True


@admin.register(Opportunity)
class OpportunityAdmin(ArchiveInsteadOfDeleteMixin, admin.ModelAdmin):
    list_display = ["name", "stage", "amount", "close_date", "contact_email", "archived", "updated_at"]
    list_filter = ["stage", "archived", ("close_date", admin.DateFieldListFilter)]
    search_fields = ["name", "contact__email", "contact__name"]
    list_select_related = ["contact"]
    autocomplete_fields = ["contact"]
    readonly_fields = ["id", "created_at", "updated_at"]
    inlines = [ActivityInline]
    date_hierarchy = None
    list_per_page = 50
    fieldsets = [
        (None, {"fields": ["name", "stage", ("value", "currency"), "close_date", "contact"]}),
        ("Agent's judgement", {"fields": ["probability", "confidence", "qualification"]}),
        ("From the CRM", {"fields": ["notes", "tags"]}),
        ("Record", {"fields": ["id", "archived", "created_at", "updated_at"], "classes": ["collapse"]}),
    ]

    @admin.display(description="value", ordering="value")
    def amount(self, obj):
        return f"{obj.value:,.2f} {obj.currency}"

    @admin.display(description="contact", ordering="contact__email")
    def contact_email(self, obj):
        return obj.contact.email or obj.contact.name if obj.contact else "—"

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), *sorted(crm_owned_fields(obj))]


@admin.register(Contact)
class ContactAdmin(ArchiveInsteadOfDeleteMixin, admin.ModelAdmin):
    list_display = ["name", "email", "company", "title", "phone", "archived"]
    list_filter = ["archived"]
    search_fields = ["name", "email", "company"]
    readonly_fields = ["id", "created_at", "updated_at"]


@admin.register(Activity)
class ActivityAdmin(ArchiveInsteadOfDeleteMixin, admin.ModelAdmin):
    list_display = ["subject", "kind", "opportunity", "occurred_at", "archived"]
    list_filter = ["kind", "archived"]
    search_fields = ["subject", "opportunity__name"]
    list_select_related = ["opportunity"]
    autocomplete_fields = ["opportunity"]
    readonly_fields = ["id", "created_at", "updated_at"]

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and SyncLink.objects.filter(entity="activity", local_id=obj.pk).exists():
            # Activities are pushed once: a synced activity cannot be edited (DESIGN §3).
            fields += ["opportunity", "kind", "subject", "body", "occurred_at"]
        return fields


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Conflict)
class ConflictAdmin(ReadOnlyAdmin):
    list_display = ["record_name", "entity", "field", "rule", "winner", "status", "connection", "created_at"]
    list_filter = ["status", "connection", "entity", "field", "rule"]
    search_fields = ["record_name"]


@admin.register(SyncRun)
class SyncRunAdmin(ReadOnlyAdmin):
    list_display = [
        "connection",
        "started_at",
        "status",
        "created_local",
        "created_remote",
        "updated_local",
        "updated_remote",
        "archived",
        "conflicts",
        "errors",
        "requests",
    ]
    list_filter = ["status", "connection"]


@admin.register(OutboxEntry)
class OutboxEntryAdmin(ReadOnlyAdmin):
    list_display = [
        "connection",
        "entity",
        "local_id",
        "enqueued_at",
        "attempts",
        "quarantined",
        "last_error",
    ]
    list_filter = ["connection", "entity", "quarantined"]


@admin.register(FieldOwnership)
class FieldOwnershipAdmin(admin.ModelAdmin):
    list_display = ["connection", "entity", "field", "owner"]
    list_filter = ["connection", "entity", "owner"]

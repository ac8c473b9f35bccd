"""Staff screens: the pipeline (deals, contacts, activities) and the sync made visible
and steerable (conflicts, field ownership, runs, connection health)."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import quote, unquote
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.db.models import BooleanField, Exists, OuterRef, Q, Value
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode

from . import rules
from .adminforms import (
    ActivityInlineForm,
    ResolveForm,
    SyncedModelForm,
    TagsField,
    display_value,
    format_tags,
    value_input,
)
from .adminpaging import BoundedCountPaginator, bounded_counts, count_bound, shown
from .choices import ConflictStatus, Owner
from .conf import app_settings
from .entities import ENTITIES
from .exceptions import ConfigurationError, MappingError
from .models import (
    Activity,
    Conflict,
    Contact,
    FieldOwnership,
    Opportunity,
    OutboxEntry,
    QuarantinedPage,
    SyncConnection,
    SyncLink,
    SyncRun,
    open_first_ordering,
)
from .registry import connections
from .sync.engine import Resolution, resolve_conflict
from .sync.health import remote_health
from .sync.ownership import crm_owned_fields, ensure_rows, sync_links

# --- The pipeline ------------------------------------------------------------------------


class ArchiveInsteadOfDeleteMixin(admin.ModelAdmin):
    """Deleting a record in the admin archives it: the sync never hard-deletes (DESIGN §1)."""

    actions = ["archive_selected", "restore_selected"]

    def get_actions(self, request, action_location=None):
        # action_location: Django 6.1 passes it (and warns when the override lacks it).
        kwargs = {} if action_location is None else {"action_location": action_location}
        actions = super().get_actions(request, **kwargs)
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


SYNC_FLAGS = ("sync_linked", "sync_pending", "sync_quarantined", "sync_conflict")


def sync_state_subqueries(entity: str) -> dict:
    """The four EXISTS subqueries of a record's sync state, by flag name.

    Each names the configured connections, so it is one probe of the index that leads
    with the connection (unique link, outbox entry, open conflict) per row, never a scan
    of every link of every connection."""
    aliases = list(app_settings.CONNECTIONS)
    if not aliases:
        return dict.fromkeys(("sync_queued", *SYNC_FLAGS), Value(False, output_field=BooleanField()))
    pk = OuterRef("pk")
    outbox = OutboxEntry.objects.filter(connection__in=aliases, entity=entity, local_id=pk)
    return {
        "sync_linked": Exists(SyncLink.objects.filter(connection__in=aliases, entity=entity, local_id=pk)),
        "sync_queued": Exists(outbox),  # pending or quarantined: one probe where both are excluded
        "sync_pending": Exists(outbox.filter(quarantined=False)),
        "sync_quarantined": Exists(outbox.filter(quarantined=True)),
        "sync_conflict": Exists(
            Conflict.objects.filter(
                connection__in=aliases, entity=entity, object_id=pk, status=ConflictStatus.OPEN
            )
        ),
    }


def with_sync_state(queryset, entity: str):
    """The sync state as aliases: filterable (the "sync" filter), never selected. A
    subquery in the SELECT list is evaluated, or hashed over every link (PostgreSQL),
    before LIMIT applies; the page's states are read by ``attach_sync_state``."""
    return queryset.alias(**sync_state_subqueries(entity))


def attach_sync_state(objects: list, entity: str) -> None:
    """Set the four sync flags on a page of records, in one query over their ids."""
    if not objects:
        return
    model = type(objects[0])
    rows = (
        model._default_manager.filter(pk__in=[obj.pk for obj in objects])
        .order_by()
        .annotate(
            **{
                name: subquery
                for name, subquery in sync_state_subqueries(entity).items()
                if name in SYNC_FLAGS
            }
        )
        .values_list("pk", *SYNC_FLAGS)
    )
    flags = {pk: values for pk, *values in rows}
    for obj in objects:
        for name, value in zip(SYNC_FLAGS, flags.get(obj.pk, (False,) * 4), strict=True):
            setattr(obj, name, value)


class SyncStateChangeList(ChangeList):
    def get_results(self, request):
        super().get_results(request)
        # Evaluates the page (the template iterates the same, now cached, queryset).
        attach_sync_state(list(self.result_list), self.model.entity_name)


SYNC_STATES = {
    "quarantined": Q(sync_quarantined=True),
    "conflict": Q(sync_conflict=True),
    "pending": Q(sync_pending=True),
    "linked": Q(sync_linked=True, sync_queued=False, sync_conflict=False),
    "unlinked": Q(sync_linked=False, sync_queued=False),
}
SYNC_LABELS = {
    "quarantined": "Quarantined",
    "conflict": "Open conflict",
    "pending": "Pending push",
    "linked": "Linked",
    "unlinked": "Not synced",
}


def sync_state(obj) -> str:
    for state in ("quarantined", "conflict", "pending"):
        if getattr(obj, f"sync_{state}", False):
            return state
    return "linked" if getattr(obj, "sync_linked", False) else "unlinked"


class SyncStateFilter(admin.SimpleListFilter):
    title = "sync state"
    parameter_name = "sync"

    def lookups(self, request, model_admin):
        return list(SYNC_LABELS.items())

    def queryset(self, request, queryset):
        return queryset.filter(SYNC_STATES[self.value()]) if self.value() in SYNC_STATES else queryset


class SyncStateMixin:
    """A "sync" column and filter, the links to the record's remote twins, and a form
    that refuses values the CRM cannot hold."""

    form: Any = SyncedModelForm

    def get_queryset(self, request):
        return with_sync_state(super().get_queryset(request), self.model.entity_name)

    def get_changelist(self, request, **kwargs):
        return SyncStateChangeList

    def get_paginator(self, request, queryset, per_page, orphans=0, allow_empty_first_page=True):
        """Filtered by sync state, the count stops after a few pages ahead (``adminpaging``)."""
        bound = count_bound(request, per_page)
        if request.GET.get(SyncStateFilter.parameter_name) in SYNC_STATES and bound is not None:
            return BoundedCountPaginator(queryset, per_page, orphans, allow_empty_first_page, bound=bound)
        return super().get_paginator(request, queryset, per_page, orphans, allow_empty_first_page)

    @admin.display(description="sync")
    def sync_status(self, obj):
        state = sync_state(obj)
        return format_html('<span class="crmsync-sync crmsync-sync-{}">{}</span>', state, SYNC_LABELS[state])

    @admin.display(description="in the CRM")
    def remote_links(self, obj):
        links = []
        for link in sync_links(obj):
            try:
                url = connections[link.connection].remote_url(link.entity, link.remote_id)
            except ConfigurationError:
                url = None
            links.append((link.connection, url or "#", link.remote_id))
        if not links:
            return "Not linked to a CRM yet."
        return format_html_join("<br>", '{}: <a href="{}" target="_blank" rel="noopener">{}</a>', links)


class ActivityInline(admin.TabularInline):
    """The deal's activities; a synced one is read-only here as in the API (its row's
    fields are disabled), and none is deleted (uncheck nothing: archive instead)."""

    model = Activity
    form = ActivityInlineForm
    extra = 0
    fields = ["kind", "subject", "occurred_at", "body", "archived"]
    show_change_link = True
    can_delete = False  # the sync never hard-deletes: the "archived" box archives

    def get_queryset(self, request):
        return rules.with_synced_flag(super().get_queryset(request))


class OpportunityForm(SyncedModelForm):
    tags = TagsField()

    class Meta:
        model = Opportunity
        fields = ["tags"]  # the admin adds the fields of its fieldsets


@admin.register(Opportunity)
class OpportunityAdmin(SyncStateMixin, ArchiveInsteadOfDeleteMixin, admin.ModelAdmin):
    list_display = [
        "name",
        "stage",
        "amount",
        "close_date",
        "contact_email",
        "sync_status",
        "archived",
        "updated_at",
    ]
    list_filter = [SyncStateFilter, "stage", "archived", ("close_date", admin.DateFieldListFilter)]
    search_fields = ["name", "contact__email", "contact__name"]
    list_select_related = ["contact"]
    autocomplete_fields = ["contact"]
    readonly_fields = ["id", "remote_links", "tag_list", "created_at", "updated_at"]
    form = OpportunityForm
    inlines = [ActivityInline]
    list_per_page = 50

    def get_fieldsets(self, request, obj=None):
        owned = crm_owned_fields(obj)
        crm_note = (
            "Owned by the CRM (human-owned): these come from the CRM and cannot be edited here."
            if owned
            else "Human-owned: once this deal is linked to a CRM, the CRM's values replace local edits."
        )
        return [
            (None, {"fields": ["name", "stage", ("value", "currency"), "close_date", "contact"]}),
            (
                "The agent's judgement (agent-owned: local values always win)",
                {"fields": ["probability", "confidence", "qualification"]},
            ),
            (
                "From the CRM",
                {"fields": ["notes", "tag_list" if "tags" in owned else "tags"], "description": crm_note},
            ),
            ("Sync", {"fields": ["remote_links", "id", "archived", "created_at", "updated_at"]}),
        ]

    @admin.display(description="tags")
    def tag_list(self, obj):
        return format_tags(obj.tags if obj else None)

    @admin.display(description="value", ordering="value")
    def amount(self, obj):
        return f"{obj.value:,.2f} {obj.currency}"

    @admin.display(description="contact", ordering="contact__email")
    def contact_email(self, obj):
        return obj.contact.email or obj.contact.name if obj.contact else "—"

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), *sorted(crm_owned_fields(obj))]


@admin.register(Contact)
class ContactAdmin(SyncStateMixin, ArchiveInsteadOfDeleteMixin, admin.ModelAdmin):
    list_display = ["name", "email", "company", "title", "phone", "sync_status", "archived"]
    list_filter = [SyncStateFilter, "archived"]
    search_fields = ["name", "email", "company"]
    readonly_fields = ["id", "remote_links", "created_at", "updated_at"]


@admin.register(Activity)
class ActivityAdmin(SyncStateMixin, ArchiveInsteadOfDeleteMixin, admin.ModelAdmin):
    list_display = ["subject", "kind", "opportunity", "occurred_at", "sync_status", "archived"]
    list_filter = [SyncStateFilter, "kind", "archived"]
    search_fields = ["subject", "opportunity__name"]
    list_select_related = ["opportunity"]
    autocomplete_fields = ["opportunity"]
    readonly_fields = ["id", "remote_links", "created_at", "updated_at"]

    def get_readonly_fields(self, request, obj=None):
        # Activities are pushed once: a synced activity cannot be edited (DESIGN §3).
        return [*super().get_readonly_fields(request, obj), *rules.frozen_fields(obj)]


# --- Conflicts -----------------------------------------------------------------------------


@admin.register(Conflict)
class ConflictAdmin(admin.ModelAdmin):
    list_display = [
        "record_name",
        "entity",
        "field",
        "local",
        "remote",
        "rule",
        "winner",
        "status",
        "connection",
        "created_at",
    ]
    list_filter = ["status", "connection", "entity", "field", "rule"]
    search_fields = ["record_name"]
    list_select_related = ["resolved_by"]
    actions = ["keep_local", "take_remote"]
    change_form_template = "admin/crmsync/conflict/change_form.html"
    readonly_fields = [field.name for field in Conflict._meta.fields if field.name != "id"]

    def get_ordering(self, request):
        # Open conflicts first: the changelist puts this before the model's default
        # ordering (a queryset's order_by would only come after it).
        return open_first_ordering()

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_resolve_permission(self, request):
        return rules.can_resolve_conflicts(request.user)

    @admin.display(description="local value")
    def local(self, obj):
        return display_value(obj.entity, obj.field, obj.local_value)

    @admin.display(description="remote value")
    def remote(self, obj):
        return display_value(obj.entity, obj.field, obj.remote_value)

    def get_urls(self):
        return [
            path(
                "<int:pk>/resolve/",
                self.admin_site.admin_view(self.resolve_view),
                name="crmsync_conflict_resolve",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # Permission before lookup: without it, every id answers 403 (none tells whether
        # a conflict exists).
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        try:
            conflict = Conflict.objects.get(pk=int(object_id))
        except (ValueError, Conflict.DoesNotExist):
            raise Http404("No conflict with this id.") from None
        sides = {
            name: display_value(conflict.entity, conflict.field, getattr(conflict, f"{name}_value"))
            for name in ("base", "local", "remote")
        }
        extra_context = {
            **(extra_context or {}),
            "conflict": conflict,
            "sides": sides,
            "value_input": value_input(conflict.entity, conflict.field, conflict.local_value),
            "can_resolve": self.has_resolve_permission(request)
            and conflict.status != ConflictStatus.RESOLVED,
            "record_url": self.record_url(conflict),
            # Conflicts change only through a resolution, never through the form.
            "show_save": False,
            "show_save_and_continue": False,
            "show_save_and_add_another": False,
            "show_delete": False,
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def record_url(self, conflict):
        model = ENTITIES[conflict.entity].get_model()
        return reverse(f"admin:crmsync_{model._meta.model_name}_change", args=[conflict.object_id])

    def resolve(self, request, conflict, resolution, value=None) -> bool:
        try:
            resolve_conflict(conflict, resolution, value=value, user=request.user)
        except (MappingError, ValueError) as err:
            self.message_user(request, f"{conflict}: {err}", messages.ERROR)
            return False
        return True

    def resolve_view(self, request, pk):
        if request.method != "POST" or not self.has_resolve_permission(request):
            raise PermissionDenied
        conflict = get_object_or_404(Conflict, pk=pk)
        form = ResolveForm(request.POST)
        url = reverse("admin:crmsync_conflict_change", args=[pk])
        if not form.is_valid():
            self.message_user(request, "Choose keep local, take remote or a value.", messages.ERROR)
            return HttpResponseRedirect(url)
        value = form.parsed_value(conflict.entity, conflict.field)
        if self.resolve(request, conflict, form.cleaned_data["resolution"], value):
            self.message_user(
                request,
                f"Resolved ({form.cleaned_data['resolution'].replace('_', ' ')}): the next sync applies it.",
                messages.SUCCESS,
            )
        return HttpResponseRedirect(url)

    def _bulk(self, request, queryset, resolution):
        if not self.has_resolve_permission(request):
            raise PermissionDenied
        done = sum(
            self.resolve(request, c, resolution) for c in queryset.exclude(status=ConflictStatus.RESOLVED)
        )
        self.message_user(
            request, f"Resolved {done} conflicts ({resolution.replace('_', ' ')}).", messages.SUCCESS
        )

    @admin.action(description="Keep the local value (push it)", permissions=["resolve"])
    def keep_local(self, request, queryset):
        self._bulk(request, queryset, Resolution.KEEP_LOCAL)

    @admin.action(description="Take the remote value (write it locally)", permissions=["resolve"])
    def take_remote(self, request, queryset):
        self._bulk(request, queryset, Resolution.TAKE_REMOTE)


# --- Field ownership ---------------------------------------------------------------------


class FieldOwnershipForm(forms.ModelForm):
    class Meta:
        model = FieldOwnership
        fields = ["connection", "entity", "field", "owner"]


@admin.register(FieldOwnership)
class FieldOwnershipAdmin(admin.ModelAdmin):
    """Every synced field of every connection, its owner editable in one table."""

    form = FieldOwnershipForm
    list_display = ["field", "entity", "connection", "owner", "default", "is_default"]
    list_editable = ["owner"]
    list_filter = ["connection", "entity", "owner"]
    list_display_links = None
    ordering = ["connection", "entity", "pk"]
    actions = ["restore_defaults"]
    list_per_page = 200

    def changelist_view(self, request, extra_context=None):
        for alias, why in ensure_rows().items():
            self.message_user(
                request, f"Connection {alias!r} is not configured correctly: {why}", messages.ERROR
            )
        return super().changelist_view(request, extra_context)

    def get_queryset(self, request):
        return super().get_queryset(request).filter(connection__in=list(app_settings.CONNECTIONS))

    def has_add_permission(self, request):
        return False  # every synced field has its row already

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="default")
    def default(self, obj):
        return Owner(obj.default_owner).label if obj.default_owner else "—"

    @admin.display(description="default?", boolean=True)
    def is_default(self, obj):
        return obj.owner == obj.default_owner

    @admin.action(description="Restore the default owner", permissions=["change"])
    def restore_defaults(self, request, queryset):
        count = 0
        for row in queryset:
            if row.owner != row.default_owner:
                row.owner = row.default_owner
                row.save(update_fields=["owner"])
                count += 1
        self.message_user(request, f"Restored the default owner of {count} fields.", messages.SUCCESS)


# --- Runs and connections ------------------------------------------------------------------


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(SyncRun)
class SyncRunAdmin(ReadOnlyAdmin):
    list_display = ["started_at", "connection", "status", "seconds", *SyncRun.COUNTS, "requests"]
    list_filter = ["status", "connection"]
    date_hierarchy = "started_at"

    @admin.display(description="duration (s)")
    def seconds(self, obj):
        return f"{obj.duration:.1f}"


@admin.register(OutboxEntry)
class OutboxEntryAdmin(ReadOnlyAdmin):
    """Local changes waiting to be pushed, per connection (quarantined ones included)."""

    list_display = [
        "local_id",
        "entity",
        "connection",
        "enqueued_at",
        "attempts",
        "quarantined",
        "last_error",
    ]
    list_filter = ["connection", "entity", "quarantined"]


# Quarantined records listed on a connection's health page (each with its Retry or
# Dismiss button); the page's counts include them all, exactly up to HEALTH_COUNT_BOUND
# ("1000+" past it).
HEALTH_ROWS = 25
HEALTH_COUNT_BOUND = 1000


def changelist_url(model_name: str, **filters) -> str:
    """A crmsync changelist with ``filters`` in its query string, encoded (an alias may
    hold any character: "eu+us", "sales&eu")."""
    return f"{reverse(f'admin:crmsync_{model_name}_changelist')}?{urlencode(filters)}"


def open_conflicts_url(alias: str) -> str:
    return changelist_url("conflict", status__exact=ConflictStatus.OPEN, connection__exact=alias)


def health_runs(alias: str) -> dict:
    """The health page's ten latest runs and its last successful one (however old)."""
    recent_runs = list(SyncRun.objects.filter(connection=alias)[:10])
    last_success = next((run for run in recent_runs if run.status in ("success", "partial")), None)
    if last_success is None and len(recent_runs) == 10:  # older than the ten shown
        last_success = SyncRun.objects.filter(connection=alias, status__in=["success", "partial"]).first()
    return {"recent_runs": recent_runs, "last_success": last_success}


def health_quarantine(alias: str) -> dict:
    """The health page's counts and quarantine lists. The lists show the first HEALTH_ROWS
    (one row more is read to tell whether they are cut) and the counts stop at
    HEALTH_COUNT_BOUND: the page costs the same with 10 or 10,000 quarantined records."""
    entries = list(OutboxEntry.objects.filter(connection=alias, quarantined=True)[: HEALTH_ROWS + 1])
    pages = list(QuarantinedPage.objects.filter(connection=alias)[: HEALTH_ROWS + 1])
    return {
        "counts": {name: shown(count) for name, count in bounded_counts(alias, HEALTH_COUNT_BOUND).items()},
        "quarantined_entries": entries[:HEALTH_ROWS],
        "more_entries": len(entries) > HEALTH_ROWS,
        "quarantined_pages": pages[:HEALTH_ROWS],
        "more_pages": len(pages) > HEALTH_ROWS,
        "health_rows": HEALTH_ROWS,
        "all_quarantined_url": changelist_url("outboxentry", connection__exact=alias, quarantined__exact=1),
    }


@admin.register(SyncConnection)
class ConnectionAdmin(admin.ModelAdmin):
    """Configured connections and their health; "Sync now" enqueues a django-q2 task.

    The connection's options (its token among them) are never shown."""

    list_display = [
        "alias",
        "adapter",
        "last_success_at",
        "short_error",
        "open_conflicts",
        "quarantined",
        "pending",
    ]
    list_display_links = ["alias"]
    change_form_template = "admin/crmsync/syncconnection/health.html"
    fields = ["alias", "last_success_at", "last_error"]
    readonly_fields = ["alias", "last_success_at", "last_error"]

    def get_queryset(self, request):
        return SyncConnection.objects.configured()

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_sync_permission(self, request):
        return rules.can_run_sync(request.user)

    @admin.display(description="adapter")
    def adapter(self, obj):
        return app_settings.CONNECTIONS.get(obj.alias, {}).get("ADAPTER", "—")

    @admin.display(description="last error")
    def short_error(self, obj):
        return (obj.last_error[:80] + "…") if len(obj.last_error) > 80 else obj.last_error or "—"

    @admin.display(description="open conflicts", ordering="open_conflicts")
    def open_conflicts(self, obj):
        return format_html('<a href="{}">{}</a>', open_conflicts_url(obj.alias), obj.open_conflicts)

    @admin.display(description="quarantined", ordering="quarantined")
    def quarantined(self, obj):
        return obj.quarantined

    @admin.display(description="pending push", ordering="pending")
    def pending(self, obj):
        return obj.pending

    def get_urls(self):
        return [
            path(
                "<str:alias>/sync-now/",
                self.admin_site.admin_view(self.sync_now_view),
                name="crmsync_syncconnection_sync_now",
            ),
            path(
                "<str:alias>/retry/<int:entry>/",
                self.admin_site.admin_view(self.retry_view),
                name="crmsync_syncconnection_retry",
            ),
            path(
                "<str:alias>/dismiss/<int:page>/",
                self.admin_site.admin_view(self.dismiss_view),
                name="crmsync_syncconnection_dismiss",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # The health page shows errors, quarantined records and runs: view permission
        # first (the admin site only checked is_staff).
        if not self.has_view_permission(request):
            raise PermissionDenied
        object_id = unquote(object_id)  # the changelist links to quote(alias): "crm_2" as "crm_5F2"
        if object_id not in app_settings.CONNECTIONS:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        connection, _ = SyncConnection.objects.get_or_create(alias=object_id)  # one SELECT once made
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Connection {connection.alias}",
            "connection": connection,
            "adapter_name": self.adapter(connection),
            "conflicts_url": open_conflicts_url(connection.alias),
            "can_sync": self.has_sync_permission(request),
            "original": connection,
            **health_runs(connection.alias),
            **health_quarantine(connection.alias),
            **remote_health(connection.alias),
        }
        return TemplateResponse(request, self.change_form_template, context)

    def sync_now_view(self, request, alias):
        if request.method != "POST" or not self.has_sync_permission(request):
            raise PermissionDenied
        if alias not in app_settings.CONNECTIONS:
            raise PermissionDenied
        from django_q.tasks import async_task

        task_id = async_task("crmsync.tasks.sync_connection", alias, task_name=f"crmsync sync {alias}")
        self.message_user(request, f"Sync of {alias} enqueued (task {task_id}).", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:crmsync_syncconnection_change", args=[quote(alias)]))

    def dismiss_view(self, request, alias, page):
        if request.method != "POST" or not self.has_sync_permission(request):
            raise PermissionDenied
        if QuarantinedPage.objects.filter(pk=page, connection=alias).dismiss():
            self.message_user(
                request,
                "The remote record is no longer re-read; an edit in the CRM brings it back.",
                messages.SUCCESS,
            )
        return HttpResponseRedirect(reverse("admin:crmsync_syncconnection_change", args=[quote(alias)]))

    def retry_view(self, request, alias, entry):
        if request.method != "POST" or not self.has_sync_permission(request):
            raise PermissionDenied
        updated = OutboxEntry.objects.filter(pk=entry, connection=alias).update(quarantined=False, attempts=0)
        if updated:
            self.message_user(
                request, "The record leaves quarantine: the next sync tries it again.", messages.SUCCESS
            )
        return HttpResponseRedirect(reverse("admin:crmsync_syncconnection_change", args=[quote(alias)]))

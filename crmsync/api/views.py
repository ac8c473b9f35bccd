"""The REST API. Views only validate, query and call the engine."""

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import OuterRef, Subquery
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema_view
from rest_framework import filters, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response

from .. import rules
from ..conf import app_settings
from ..exceptions import ConfigurationError, MappingError
from ..models import (
    Activity,
    Conflict,
    Contact,
    FieldOwnership,
    Opportunity,
    QuarantinedPage,
    SyncConnection,
    SyncRun,
)
from ..registry import connections
from ..sync.engine import resolve_conflict
from ..sync.health import remote_health
from ..sync.ownership import default_owners
from . import filters as api_filters
from . import serializers as api
from .base import CrmSyncAPIMixin
from .pagination import Pagination  # noqa: F401  (its old home; CRMSYNC["API"]["PAGINATION_CLASS"] names it)
from .permissions import ModelPermissions  # noqa: F401  (its old home)
from .schema import extend_schema

IF_MATCH = OpenApiParameter(
    "If-Match",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description="The ETag of the record as you read it; 412 when it changed since.",
)


class FilterBackend(DjangoFilterBackend):
    """django-filter, skipped when the request names none of the filters (a plain list
    then costs no form validation)."""

    def filter_queryset(self, request, queryset, view):
        filterset_class = self.get_filterset_class(view, queryset)
        names = filterset_class.base_filters if filterset_class else {}
        params = request.query_params
        if not any(key == name or key.startswith(f"{name}_") for key in params for name in names):
            return queryset
        return super().filter_queryset(request, queryset, view)


def save_or_400(serializer: Any) -> Any:
    """``serializer.save()``; a unique constraint that a concurrent write won (the check in
    validation passed, the insert lost the race) is a 400 naming the field, not a 500."""
    try:
        with transaction.atomic():
            return serializer.save()
    except IntegrityError:
        # Validate again: the row that won the race is visible now, so the field's own
        # unique check reports it with its message.
        again = type(serializer)(
            serializer.instance,
            data=serializer.initial_data,
            partial=serializer.partial,
            context=serializer.context,
        )
        if not again.is_valid():
            raise ValidationError(again.errors) from None
        raise


class SyncedRecordViewSet(CrmSyncAPIMixin, viewsets.ModelViewSet):
    """CRUD where DELETE archives, responses carry an ETag and If-Match guards writes."""

    filter_backends = [FilterBackend, api_filters.SearchFilter, filters.OrderingFilter]
    # Any segment reaches the view, so a malformed id gets the API's JSON 404.
    lookup_value_regex = r"[^/]+"

    def get_queryset(self):
        queryset = self.queryset.all()
        if self.action == "list" and "archived" not in self.request.query_params:
            queryset = queryset.filter(archived=False)
        return queryset

    @staticmethod
    def etag(instance) -> str:
        return f'"{instance.pk}-{instance.updated_at.timestamp():.6f}"'

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        instance = getattr(self, "_etag_instance", None)
        if instance is not None and response.status_code < 300:
            response["ETag"] = self.etag(instance)
        return response

    def retrieve(self, request, *args, **kwargs):
        self._etag_instance = self.get_object()
        return Response(self.get_serializer(self._etag_instance).data)

    def perform_create(self, serializer):
        self._etag_instance = save_or_400(serializer)

    def locked_object(self) -> Any:
        """The record, row-locked for this transaction (PostgreSQL; SQLite's IMMEDIATE
        transactions lock the database)."""
        instance = self.get_object()
        return type(instance).objects.select_for_update().get(pk=instance.pk)

    def precondition_failed(self, request, instance) -> Response | None:
        """412 when If-Match names another version of the record than the stored one."""
        expected = request.headers.get("If-Match")
        # A list of ETags matches when one of them does (RFC 9110 §13.1.1).
        tags = {tag.strip() for tag in (expected or "").split(",")}
        if expected and not tags & {"*", self.etag(instance)}:
            return Response(
                {"detail": "The record changed since you read it: fetch it again (see its ETag)."},
                status=status.HTTP_412_PRECONDITION_FAILED,
            )
        return None

    def update(self, request, *args, **kwargs):
        with transaction.atomic():
            instance = self.locked_object()
            refused = self.precondition_failed(request, instance)
            if refused is not None:
                return refused
            serializer = self.get_serializer(
                instance, data=request.data, partial=kwargs.get("partial", False)
            )
            serializer.is_valid(raise_exception=True)
            self._etag_instance = save_or_400(serializer)
        return Response(serializer.data)

    def destroy(self, request, *args, **kwargs):
        """Archive the record (the sync never hard-deletes); If-Match guards it as it does
        an update."""
        with transaction.atomic():
            instance = self.locked_object()
            refused = self.precondition_failed(request, instance)
            if refused is not None:
                return refused
            instance.archived = True
            instance.save()
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    update=extend_schema(parameters=[IF_MATCH]),
    partial_update=extend_schema(parameters=[IF_MATCH]),
    destroy=extend_schema(parameters=[IF_MATCH]),
)
class OpportunityViewSet(SyncedRecordViewSet):
    """Deals. DELETE archives (the sync never hard-deletes)."""

    queryset = Opportunity.objects.all()  # the contact is serialized by id: no join needed
    serializer_class = api.OpportunitySerializer
    filterset_class = api_filters.OpportunityFilter
    search_fields = ["name"]
    ordering_fields = ["name", "stage", "value", "close_date", "created_at", "updated_at"]
    ordering = ["-updated_at"]


@extend_schema_view(
    update=extend_schema(parameters=[IF_MATCH]),
    partial_update=extend_schema(parameters=[IF_MATCH]),
    destroy=extend_schema(parameters=[IF_MATCH]),
)
class ContactViewSet(SyncedRecordViewSet):
    queryset = Contact.objects.all()
    serializer_class = api.ContactSerializer
    filterset_class = api_filters.ContactFilter
    search_fields = ["name", "email", "company"]
    ordering_fields = ["name", "email", "company", "created_at", "updated_at"]
    ordering = ["name"]


@extend_schema_view(
    update=extend_schema(parameters=[IF_MATCH]),
    partial_update=extend_schema(parameters=[IF_MATCH]),
    destroy=extend_schema(parameters=[IF_MATCH]),
)
class ActivityViewSet(SyncedRecordViewSet):
    """Activities: pushed once to the CRM when created; a synced activity cannot be edited."""

    queryset = Activity.objects.all()
    serializer_class = api.ActivitySerializer

    def get_queryset(self):
        return rules.with_synced_flag(super().get_queryset())

    filterset_class = api_filters.ActivityFilter
    search_fields = ["subject"]
    ordering_fields = ["occurred_at", "created_at"]
    ordering = ["-occurred_at"]


class ConflictViewSet(CrmSyncAPIMixin, viewsets.ReadOnlyModelViewSet):
    """Conflicts the sync recorded; open ones first. ``resolve`` decides an open one."""

    queryset = Conflict.objects.select_related("resolved_by")
    serializer_class = api.ConflictSerializer
    action_permissions = {"resolve": [rules.RESOLVE_CONFLICT]}
    lookup_value_regex = r"[^/]+"
    filter_backends = [FilterBackend, api_filters.SearchFilter, filters.OrderingFilter]
    filterset_class = api_filters.ConflictFilter
    search_fields = ["record_name"]
    ordering_fields = ["created_at", "updated_at"]

    def get_queryset(self):
        # Open conflicts first, newest first within each status.
        return self.queryset.open_first()

    @extend_schema(request=api.ResolveSerializer, responses=api.ConflictSerializer)
    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        conflict = self.get_object()
        payload = api.ResolveSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            resolve_conflict(
                conflict,
                payload.validated_data["resolution"],
                value=payload.validated_data.get("value"),
                user=request.user,
            )
        except MappingError as err:
            raise ValidationError({"value": [str(err)]}) from err
        except ValueError as err:
            raise ValidationError({"resolution": [str(err)]}) from err
        return Response(self.get_serializer(conflict).data)


class FieldOwnershipViewSet(CrmSyncAPIMixin, viewsets.ViewSet):
    """Who owns each synced field, per connection and entity (DESIGN §2 defaults shown).

    The id is ``connection:entity:field``; PUT/PATCH ``{"owner": ...}`` changes it from the
    next sync on. Setting the default owner removes the override.
    """

    serializer_class = api.FieldOwnershipSerializer
    # For the model permissions: view_fieldownership to read, change_fieldownership to write.
    queryset = FieldOwnership.objects.all()
    paginated = False
    lookup_value_regex = r"[^/]+"

    def rows(self) -> list[dict]:
        overrides = {(o.connection, o.entity, o.field): o.owner for o in FieldOwnership.objects.all()}
        rows = []
        for alias in connections.aliases():
            for entity in sorted(self.synced_entities(alias)):
                for field, default in default_owners(entity).items():
                    owner = overrides.get((alias, entity, field), default)
                    rows.append(
                        {
                            "id": f"{alias}:{entity}:{field}",
                            "connection": alias,
                            "entity": entity,
                            "field": field,
                            "owner": owner,
                            "default_owner": default,
                            "is_default": owner == default,
                        }
                    )
        return rows

    def synced_entities(self, alias):
        try:
            return {e for e in connections[alias].entities if e != "activity"}
        except ConfigurationError:
            return set()

    def get_row(self, pk):
        for row in self.rows():
            if row["id"] == pk:
                return row
        raise NotFound("No synced field with this id (connection:entity:field).")

    @extend_schema(responses=api.FieldOwnershipSerializer(many=True))
    def list(self, request):
        return Response(api.FieldOwnershipSerializer(self.rows(), many=True).data)

    @extend_schema(responses=api.FieldOwnershipSerializer)
    def retrieve(self, request, pk=None):
        return Response(api.FieldOwnershipSerializer(self.get_row(pk)).data)

    @extend_schema(request=api.FieldOwnershipSerializer, responses=api.FieldOwnershipSerializer)
    def update(self, request, pk=None, partial=False):
        row = self.get_row(pk)
        serializer = api.FieldOwnershipSerializer(row, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        owner = serializer.validated_data.get("owner", row["owner"])
        key = {"connection": row["connection"], "entity": row["entity"], "field": row["field"]}
        if owner == row["default_owner"]:
            FieldOwnership.objects.filter(**key).delete()
        else:
            FieldOwnership.objects.update_or_create(**key, defaults={"owner": owner})
        return Response(api.FieldOwnershipSerializer(self.get_row(pk)).data)

    @extend_schema(request=api.FieldOwnershipSerializer, responses=api.FieldOwnershipSerializer)
    def partial_update(self, request, pk=None):
        return self.update(request, pk, partial=True)


class QuarantinedPageViewSet(CrmSyncAPIMixin, viewsets.ReadOnlyModelViewSet):
    """Remote records that could not be read or applied, held by their remote id and
    re-read every run (DESIGN §8). ``dismiss`` stops re-reading one."""

    queryset = QuarantinedPage.objects.all()
    serializer_class = api.QuarantinedPageSerializer
    lookup_value_regex = r"[^/]+"  # any id answers JSON (404 when unknown), as elsewhere
    filter_backends = [FilterBackend]
    filterset_class = api_filters.QuarantinedPageFilter
    action_permissions = {"dismiss": [rules.RUN_SYNC]}

    @extend_schema(request=None, responses={204: None})
    @action(detail=True, methods=["post"])
    def dismiss(self, request, pk=None):
        self.get_queryset().filter(pk=self.get_object().pk).dismiss()
        return Response(status=status.HTTP_204_NO_CONTENT)


class SyncRunViewSet(CrmSyncAPIMixin, viewsets.ReadOnlyModelViewSet):
    queryset = SyncRun.objects.all()
    serializer_class = api.SyncRunSerializer
    lookup_value_regex = r"[^/]+"
    filter_backends = [FilterBackend]
    filterset_class = api_filters.SyncRunFilter


class ConnectionViewSet(CrmSyncAPIMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """Configured connections with their health. ``sync`` enqueues a run."""

    serializer_class = api.ConnectionSerializer
    queryset = SyncConnection.objects.all()
    action_permissions = {"sync": [rules.RUN_SYNC]}
    paginated = False  # every configured connection in one answer
    lookup_value_regex = r"[^/]+"

    def health(self) -> list[dict]:
        latest = (
            SyncRun.objects.filter(connection=OuterRef("connection")).order_by("-started_at").values("pk")[:1]
        )
        aliases = list(app_settings.CONNECTIONS)
        last_runs = {
            run.connection: run for run in SyncRun.objects.filter(connection__in=aliases, pk=Subquery(latest))
        }
        rows = []
        for connection in SyncConnection.objects.configured():
            try:
                entities = sorted(connections[connection.alias].entities)
            except ConfigurationError:
                entities = []
            rows.append(
                {
                    "alias": connection.alias,
                    "adapter": app_settings.CONNECTIONS[connection.alias].get("ADAPTER", ""),
                    "entities": entities,
                    "last_success_at": connection.last_success_at,
                    "last_error": connection.last_error,
                    "open_conflicts": connection.open_conflicts,
                    "quarantined": connection.quarantined,
                    "pending": connection.pending,
                    **remote_health(connection.alias),
                    "last_run": last_runs.get(connection.alias),
                }
            )
        return sorted(rows, key=lambda row: aliases.index(row["alias"]))

    def list(self, request):
        return Response(api.ConnectionSerializer(self.health(), many=True).data)

    @extend_schema(request=None, responses={202: api.SyncStartedSerializer})
    @action(detail=True, methods=["post"])
    def sync(self, request, pk=None):
        if pk not in app_settings.CONNECTIONS:
            raise NotFound(f"No connection {pk!r} in CRMSYNC['CONNECTIONS'].")
        from django_q.tasks import async_task

        task_id = async_task("crmsync.tasks.sync_connection", pk, task_name=f"crmsync sync {pk}")
        return Response({"connection": pk, "task_id": task_id}, status=status.HTTP_202_ACCEPTED)

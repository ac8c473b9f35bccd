from django.contrib import admin
from django.core.cache import caches
from django.urls import path
from django_filters import rest_framework as django_filters
from rest_framework import pagination, serializers, throttling, viewsets

from crmsync.api.serializers import OpportunitySerializer
from crmsync.conf import app_settings
from crmsync.models import Activity, Conflict, Contact, Opportunity, SyncConnection
from project.urls import urlpatterns as project_urls


class PlainSerializer(serializers.ModelSerializer):
    class Meta:
        model = Opportunity
        fields = OpportunitySerializer.Meta.fields


class PlainPagination(pagination.PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 100


class PlainUserThrottle(throttling.UserRateThrottle):
    """The same throttle crmsync's API has by default (per user, at its rate, counted in
    the same cache), so both sides of a comparison pay for it alike."""

    rate = "1200/minute"

    def __init__(self):
        super().__init__()
        self.cache = caches[app_settings.API["THROTTLE_CACHE"]]  # where crmsync's counts


class PlainViewSet(viewsets.ModelViewSet):
    """The baseline: a plain ModelViewSet on the same model, serving the same rows (a
    soft-deleting app hides archived deals too), with django-filter's generated filters."""

    queryset = Opportunity.objects.filter(archived=False).order_by("-updated_at")
    serializer_class = PlainSerializer
    pagination_class = PlainPagination
    throttle_classes = [PlainUserThrottle]
    filter_backends = [django_filters.DjangoFilterBackend]
    filterset_fields = {
        "stage": ["exact", "in"],
        "value": ["gte", "lte"],
        "close_date": ["gte", "lte"],
        "updated_at": ["gte"],
    }


# --- A plain admin: the same models on a second AdminSite, ModelAdmins as Django makes them.


class PlainActivityInline(admin.TabularInline):
    model = Activity
    extra = 0
    fields = ["kind", "subject", "occurred_at", "body", "archived"]
    show_change_link = True


class PlainContactAdmin(admin.ModelAdmin):
    search_fields = ["name", "email", "company"]


class PlainOpportunityAdmin(admin.ModelAdmin):
    """The deals admin as plain Django makes it: the same columns, filters, search,
    fieldsets, activity inline and contact autocomplete, and nothing about the sync."""

    list_display = ["name", "stage", "value", "close_date", "contact", "archived", "updated_at"]
    list_filter = ["stage", "archived", ("close_date", admin.DateFieldListFilter)]
    search_fields = ["name", "contact__email", "contact__name"]
    list_select_related = ["contact"]
    autocomplete_fields = ["contact"]
    readonly_fields = ["id", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["name", "stage", ("value", "currency"), "close_date", "contact"]}),
        ("The agent's judgement", {"fields": ["probability", "confidence", "qualification"]}),
        ("From the CRM", {"fields": ["notes", "tags"]}),
        ("Record", {"fields": ["id", "archived", "created_at", "updated_at"]}),
    ]
    inlines = [PlainActivityInline]
    list_per_page = 50


class PlainConflictAdmin(admin.ModelAdmin):
    list_display = ["record_name", "entity", "field", "rule", "winner", "status", "connection", "created_at"]
    list_filter = ["status", "connection", "entity", "field", "rule"]


plain_admin = admin.AdminSite(name="plain_admin")
plain_admin.register(Opportunity, PlainOpportunityAdmin)
plain_admin.register(Conflict, PlainConflictAdmin)
plain_admin.register(Contact, PlainContactAdmin)
plain_admin.register(SyncConnection)

urlpatterns = [
    path("plain/opportunities/", PlainViewSet.as_view({"get": "list"})),
    path("plain-admin/", plain_admin.urls),
    *project_urls,
]

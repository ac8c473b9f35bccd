import django_filters as filters

from ..choices import DealStage
from ..models import Activity, Conflict, Contact, Opportunity, SyncRun


class OpportunityFilter(filters.FilterSet):
    stage = filters.MultipleChoiceFilter(choices=DealStage.choices, help_text="Repeat for several stages.")
    close_date = filters.DateFromToRangeFilter(help_text="close_date_after / close_date_before (inclusive).")
    value_min = filters.NumberFilter(field_name="value", lookup_expr="gte")
    value_max = filters.NumberFilter(field_name="value", lookup_expr="lte")
    updated_since = filters.IsoDateTimeFilter(field_name="updated_at", lookup_expr="gte")
    archived = filters.BooleanFilter(help_text="Archived records are left out unless archived=true.")
    contact = filters.ModelChoiceFilter(queryset=Contact.objects.all())

    class Meta:
        model = Opportunity
        fields = ["stage", "close_date", "value_min", "value_max", "updated_since", "archived", "contact"]


class ContactFilter(filters.FilterSet):
    updated_since = filters.IsoDateTimeFilter(field_name="updated_at", lookup_expr="gte")
    archived = filters.BooleanFilter()

    class Meta:
        model = Contact
        fields = ["email", "company", "archived", "updated_since"]


class ActivityFilter(filters.FilterSet):
    occurred_after = filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    archived = filters.BooleanFilter()

    class Meta:
        model = Activity
        fields = ["opportunity", "kind", "archived", "occurred_after"]


class ConflictFilter(filters.FilterSet):
    class Meta:
        model = Conflict
        fields = ["connection", "entity", "field", "status", "rule", "object_id"]


class SyncRunFilter(filters.FilterSet):
    class Meta:
        model = SyncRun
        fields = ["connection", "status"]

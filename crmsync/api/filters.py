import datetime as dt

import django_filters as filters
from django import forms
from django_filters.fields import IsoDateTimeField
from rest_framework import filters as drf_filters
from rest_framework.exceptions import ValidationError

from ..choices import DealStage
from ..models import Activity, Conflict, Contact, Opportunity, QuarantinedPage, SyncRun


class SearchFilter(drf_filters.SearchFilter):
    """DRF's search, with a refused term (a NUL character) reported under its parameter
    name like every other bad filter, not as a bare list."""

    def get_search_terms(self, request):
        try:
            return super().get_search_terms(request)
        except ValidationError as err:
            raise ValidationError({self.search_param: err.detail}) from err


class UTCDateTimeField(IsoDateTimeField):
    """An ISO 8601 date-time, converted to UTC in Python: offsets PostgreSQL cannot store
    (such as -16:28) and years it cannot convert are a 400, not a database error."""

    def to_python(self, value):
        moment = super().to_python(value)
        if moment is None:
            return None
        try:
            moment = moment.astimezone(dt.UTC)
            moment.replace(year=moment.year + 1)  # room for the database's own conversions
        except (OverflowError, ValueError) as err:
            raise forms.ValidationError("Enter a date-time between the years 1 and 9998.") from err
        return moment


class UTCDateTimeFilter(filters.IsoDateTimeFilter):
    field_class = UTCDateTimeField


class OpportunityFilter(filters.FilterSet):
    # distinct=False: a filter on the deal's own column cannot duplicate rows, and
    # django-filter's default (SELECT DISTINCT over every column) sorts the whole match.
    stage = filters.MultipleChoiceFilter(
        choices=DealStage.choices, distinct=False, help_text="Repeat for several stages."
    )
    close_date = filters.DateFromToRangeFilter(help_text="close_date_after / close_date_before (inclusive).")
    value_min = filters.NumberFilter(field_name="value", lookup_expr="gte")
    value_max = filters.NumberFilter(field_name="value", lookup_expr="lte")
    updated_since = UTCDateTimeFilter(field_name="updated_at", lookup_expr="gte")
    archived = filters.BooleanFilter(help_text="Archived records are left out unless archived=true.")
    contact = filters.ModelChoiceFilter(queryset=Contact.objects.all())

    class Meta:
        model = Opportunity
        fields = ["stage", "close_date", "value_min", "value_max", "updated_since", "archived", "contact"]


class ContactFilter(filters.FilterSet):
    updated_since = UTCDateTimeFilter(field_name="updated_at", lookup_expr="gte")
    archived = filters.BooleanFilter()

    class Meta:
        model = Contact
        fields = ["email", "company", "archived", "updated_since"]


class ActivityFilter(filters.FilterSet):
    occurred_after = UTCDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    archived = filters.BooleanFilter()

    class Meta:
        model = Activity
        fields = ["opportunity", "kind", "archived", "occurred_after"]


class ConflictFilter(filters.FilterSet):
    class Meta:
        model = Conflict
        fields = ["connection", "entity", "field", "status", "rule", "object_id"]


class QuarantinedPageFilter(filters.FilterSet):
    class Meta:
        model = QuarantinedPage
        fields = ["connection", "entity"]


class SyncRunFilter(filters.FilterSet):
    class Meta:
        model = SyncRun
        fields = ["connection", "status"]

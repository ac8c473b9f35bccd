from django.urls import path
from rest_framework import pagination, serializers, viewsets

from crmsync.api.serializers import OpportunitySerializer
from crmsync.models import Opportunity
from project.urls import urlpatterns as project_urls


class PlainSerializer(serializers.ModelSerializer):
    class Meta:
        model = Opportunity
        fields = OpportunitySerializer.Meta.fields


class PlainPagination(pagination.PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 100


class PlainViewSet(viewsets.ModelViewSet):
    """The baseline: a plain ModelViewSet on the same model, serving the same rows (a
    soft-deleting app hides archived deals too)."""

    queryset = Opportunity.objects.filter(archived=False).order_by("-updated_at")
    serializer_class = PlainSerializer
    pagination_class = PlainPagination


urlpatterns = [
    path("plain/opportunities/", PlainViewSet.as_view({"get": "list"})),
    *project_urls,
]

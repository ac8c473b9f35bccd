"""``path("api/", include("crmsync.api.urls"))`` gives /api/v1/..., /api/schema/ and /api/docs/."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from . import views

router = DefaultRouter()
router.register("opportunities", views.OpportunityViewSet, basename="opportunity")
router.register("contacts", views.ContactViewSet, basename="contact")
router.register("activities", views.ActivityViewSet, basename="activity")
router.register("conflicts", views.ConflictViewSet, basename="conflict")
router.register("field-ownership", views.FieldOwnershipViewSet, basename="field-ownership")
router.register("sync-runs", views.SyncRunViewSet, basename="sync-run")
router.register("connections", views.ConnectionViewSet, basename="connection")

app_name = "crmsync-api"
urlpatterns = [
    path("v1/", include(router.urls)),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="crmsync-api:schema"), name="docs"),
]

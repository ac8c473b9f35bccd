"""``path("api/", include("crmsync.api.urls"))`` gives /api/v1/..., /api/schema/ and /api/docs/."""

from django.urls import include, path

from . import docs, views

router = docs.Router()
router.register("opportunities", views.OpportunityViewSet, basename="opportunity")
router.register("contacts", views.ContactViewSet, basename="contact")
router.register("activities", views.ActivityViewSet, basename="activity")
router.register("conflicts", views.ConflictViewSet, basename="conflict")
router.register("field-ownership", views.FieldOwnershipViewSet, basename="field-ownership")
router.register("sync-runs", views.SyncRunViewSet, basename="sync-run")
router.register("quarantined-pages", views.QuarantinedPageViewSet, basename="quarantined-page")
router.register("connections", views.ConnectionViewSet, basename="connection")

# The API's routes (the schema describes these).
api_patterns = [path("v1/", include(router.urls))]

app_name = "crmsync-api"
urlpatterns = [
    *api_patterns,
    path("schema/", docs.SchemaView.as_view(), name="schema"),
    path("docs/", docs.DocsView.as_view(url_name="crmsync-api:schema"), name="docs"),
]

"""The OpenAPI schema and its Swagger UI, the same under any host settings.

The schema covers crmsync's own routes only (under the prefix the host mounted them at)
and is generated with crmsync's drf-spectacular settings, whatever the host's
SPECTACULAR_SETTINGS say; the docs page loads Swagger UI from drf-spectacular-sidecar's
static files, never from a CDN. Both are closed to anonymous users unless
``CRMSYNC["API"]["SCHEMA_PERMISSION_CLASSES"]`` opens them.
"""

from typing import Any

from django.urls import include, path
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.settings import SPECTACULAR_DEFAULTS, patched_settings
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework import routers

from .. import __version__
from .base import CrmSyncAPIMixin, api_classes

SCHEMA_SETTINGS: dict[str, Any] = {
    # Every setting pinned (drf-spectacular refuses SERVE_* and the generator class here:
    # the views set those themselves).
    **{
        key: value
        for key, value in SPECTACULAR_DEFAULTS.items()
        if not key.startswith("SERVE_") and key != "DEFAULT_GENERATOR_CLASS"
    },
    "TITLE": "crmsync API",
    "DESCRIPTION": "Deals, contacts and activities in two-way sync with a CRM.",
    "VERSION": __version__,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # No call to swagger.io's online validator: the page needs nothing from another host.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "crmsync.api.schema.add_error_responses",
    ],
    "ENUM_NAME_OVERRIDES": {"OwnerEnum": "crmsync.choices.Owner", "WinnerEnum": "crmsync.choices.Winner"},
}


class ClosedByDefault:
    permission_setting = "SCHEMA_PERMISSION_CLASSES"


class SchemaView(ClosedByDefault, CrmSyncAPIMixin, SpectacularAPIView):
    """OpenAPI 3 of crmsync's API (YAML, or JSON with ``?format=json``)."""

    renderer_classes = SpectacularAPIView.renderer_classes
    generator_class = SchemaGenerator
    serve_public = True
    urlconf = None
    custom_settings = SCHEMA_SETTINGS
    schema = None  # not part of the API it describes

    def get(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        from .urls import api_patterns

        # The routes as mounted: "/api/schema/" -> the v1 routes under "api/".
        prefix = request.path_info[1:].rsplit("schema/", 1)[0]
        self.patterns = [path(prefix, include(api_patterns))]
        return super().get(request, *args, **kwargs)


class DocsView(ClosedByDefault, CrmSyncAPIMixin, SpectacularSwaggerView):
    """Swagger UI, from the sidecar's static files."""

    renderer_classes = SpectacularSwaggerView.renderer_classes
    title = SCHEMA_SETTINGS["TITLE"]
    schema = None

    def get(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        with patched_settings(SCHEMA_SETTINGS):
            return super().get(request, *args, **kwargs)

    def _get_schema_auth_names(self) -> list[str]:
        # "Authorize" in the page sends its credentials with the schema request too: the
        # schema is closed to anonymous users by default.
        from drf_spectacular.extensions import OpenApiAuthenticationExtension

        names: list[str] = []
        for cls in api_classes("AUTHENTICATION_CLASSES"):
            auth = OpenApiAuthenticationExtension.get_match(cls)
            if auth is not None:
                names += [auth.name] if isinstance(auth.name, str) else auth.name
        return names


class APIRootView(ClosedByDefault, CrmSyncAPIMixin, routers.APIRootView):
    schema = None


class Router(routers.DefaultRouter):
    APIRootView = APIRootView

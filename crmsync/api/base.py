"""What every crmsync API view carries itself, so that it behaves the same under any host
settings (DESIGN §11): authentication, permissions, pagination, throttles, parsers,
renderers, the exception handler and the OpenAPI schema class. Each comes from
``CRMSYNC["API"]`` (``crmsync.conf.API_DEFAULTS``), read per request, never from
REST_FRAMEWORK's defaults."""

from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.utils.module_loading import import_string
from rest_framework import parsers, renderers, status
from rest_framework.response import Response
from rest_framework.schemas.inspectors import ViewInspector
from rest_framework.views import APIView, exception_handler

from ..conf import app_settings
from .parsers import JSONParser


def api_class(key: str) -> Any:
    return import_string(app_settings.API[key])


def api_classes(key: str) -> list[Any]:
    return [import_string(path) for path in app_settings.API[key]]


def handle_exception(exc: Exception, context: dict) -> Response | None:
    """DRF's handler, and a JSON 413 for a body over DATA_UPLOAD_MAX_MEMORY_SIZE (Django
    would answer its HTML 400 page)."""
    if isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return Response(
            {"detail": f"The request body is larger than {limit:,} bytes (DATA_UPLOAD_MAX_MEMORY_SIZE)."},
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    return exception_handler(exc, context)


class SchemaFromSettings(ViewInspector):
    """Like DRF's DefaultSchema, with ``CRMSYNC["API"]["SCHEMA_CLASS"]`` instead of
    REST_FRAMEWORK's DEFAULT_SCHEMA_CLASS (which a host may leave at DRF's own)."""

    def __get__(self, instance: Any, owner: Any) -> Any:
        result = super().__get__(instance, owner)
        if not isinstance(result, SchemaFromSettings):
            return result  # set on the view instance (drf-spectacular does)
        inspector = api_class("SCHEMA_CLASS")()
        inspector.view = instance
        return inspector


class CrmSyncAPIMixin(APIView):
    """Mixed into every crmsync API view (before DRF's view classes)."""

    parser_classes = [JSONParser, parsers.FormParser, parsers.MultiPartParser]
    renderer_classes = [renderers.JSONRenderer, renderers.BrowsableAPIRenderer]
    versioning_class = None
    schema = SchemaFromSettings()
    permission_setting = "PERMISSION_CLASSES"
    # False: the view answers every row at once (and the schema says so).
    paginated = True

    def get_authenticators(self) -> list[Any]:
        return [cls() for cls in api_classes("AUTHENTICATION_CLASSES")]

    def get_permissions(self) -> list[Any]:
        return [cls() for cls in api_classes(self.permission_setting)]

    def get_throttles(self) -> list[Any]:
        return [cls() for cls in api_classes("THROTTLE_CLASSES")]

    @property
    def pagination_class(self) -> Any:
        if "_pagination_class" in self.__dict__:
            return self.__dict__["_pagination_class"]
        return api_class("PAGINATION_CLASS") if self.paginated else None

    @pagination_class.setter
    def pagination_class(self, value: Any) -> None:
        self.__dict__["_pagination_class"] = value

    def get_exception_handler(self) -> Any:
        return handle_exception

    def check_permissions(self, request: Any) -> None:
        # Throttle first: a client without credentials gets its 401s at the anonymous
        # rate, not as fast as it can ask (DRF throttles only after the permission check).
        self._throttled = True
        super().check_throttles(request)
        super().check_permissions(request)

    def check_throttles(self, request: Any) -> None:
        if not getattr(self, "_throttled", False):
            super().check_throttles(request)

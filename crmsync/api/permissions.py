from typing import Any

from rest_framework import permissions


class ModelPermissions(permissions.DjangoModelPermissions):
    """Django's model permissions, reading included (``view_*``).

    A view's ``action_permissions`` ({action: [perm, ...]}) names what a custom action
    needs instead of the method's default (POST would otherwise ask ``add_*``): the
    admin asks the same (``crmsync.rules``).
    """

    perms_map = {
        **permissions.DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": ["%(app_label)s.view_%(model_name)s"],
    }

    def has_permission(self, request: Any, view: Any) -> bool:
        required = getattr(view, "action_permissions", {}).get(getattr(view, "action", None))
        if required is None:
            return super().has_permission(request, view)
        user = request.user
        return bool(user and user.is_authenticated and user.has_perms(required))

    def _queryset(self, view: Any) -> Any:
        # Only the model matters here: do not build the view's queryset a second time.
        return view.queryset if getattr(view, "queryset", None) is not None else super()._queryset(view)

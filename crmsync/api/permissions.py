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
            return super().has_permission(request, view) or self._reads_by_change(request, view)
        user = request.user
        return bool(user and user.is_authenticated and user.has_perms(required))

    def _reads_by_change(self, request: Any, view: Any) -> bool:
        """A read allowed by ``change_*`` alone, as Django's admin allows it
        (``ModelAdmin.has_view_permission``)."""
        if request.method not in permissions.SAFE_METHODS or getattr(
            view, "_ignore_model_permissions", False
        ):
            return False
        user = request.user
        opts = self._queryset(view).model._meta
        return bool(
            user and user.is_authenticated and user.has_perm(f"{opts.app_label}.change_{opts.model_name}")
        )

    def _queryset(self, view: Any) -> Any:
        # Only the model matters here: do not build the view's queryset a second time.
        return view.queryset if getattr(view, "queryset", None) is not None else super()._queryset(view)

from django.apps import AppConfig


class CrmSyncConfig(AppConfig):
    name = "crmsync"
    verbose_name = "CRM sync"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.db.models.signals import post_migrate

        from . import checks  # noqa: F401  (registers the system checks)
        from .tasks import ensure_schedules

        post_migrate.connect(ensure_schedules, sender=self)

from django.apps import AppConfig


def create_cache_table(using: str = "default", **kwargs) -> None:
    """The database cache's table (CACHES without REDIS_URL), made by every migrate:
    no separate createcachetable step to forget."""
    from django.conf import settings
    from django.core.management import call_command

    if any(c["BACKEND"].endswith("DatabaseCache") for c in settings.CACHES.values()):
        call_command("createcachetable", database=using, verbosity=0)


class ProjectConfig(AppConfig):
    name = "project"
    verbose_name = "Example project"

    def ready(self):
        from django.db.models.signals import post_migrate

        post_migrate.connect(create_cache_table, sender=self)

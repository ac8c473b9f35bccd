from django.apps import AppConfig


def create_cache_table(sender, using: str = "default", **kwargs) -> None:
    """The database cache's table (CACHES without REDIS_URL), made by every migrate:
    no separate createcachetable step to forget. (post_migrate is sent per app with
    models; this project has none, so it listens for crmsync's.)"""
    from django.conf import settings

    if sender.label != "crmsync":
        return
    from django.core.management import call_command

    if any(c["BACKEND"].endswith("DatabaseCache") for c in settings.CACHES.values()):
        call_command("createcachetable", database=using, verbosity=0)


class ProjectConfig(AppConfig):
    name = "project"
    verbose_name = "Example project"

    def ready(self):
        from django.db.models.signals import post_migrate

        post_migrate.connect(create_cache_table, dispatch_uid="project.create_cache_table")

from django.core.management.base import BaseCommand, CommandError

from crmsync.conf import app_settings
from crmsync.exceptions import AdapterError, ConfigurationError
from crmsync.registry import connections


class Command(BaseCommand):
    help = (
        "Check each connection's remote side: for Notion, that every mapped property exists "
        "with a type that can hold it. Sends a few read requests; exits 1 on any problem."
    )

    def add_arguments(self, parser):
        parser.add_argument("--connection", help='a key of CRMSYNC["CONNECTIONS"] (default: all)')

    def handle(self, *args, connection=None, **options):
        aliases = [connection] if connection else list(app_settings.CONNECTIONS)
        if not aliases:
            raise CommandError('No connection configured: add one to CRMSYNC["CONNECTIONS"].')
        problems = []
        for alias in aliases:
            try:
                found = connections[alias].check()
            except (ConfigurationError, AdapterError) as err:
                found = [str(err)]
            if found:
                problems += [f"{alias}: {problem}" for problem in found]
            else:
                self.stdout.write(f"{alias}: OK")
        if problems:
            raise CommandError("The CRM does not match the mapping:\n  " + "\n  ".join(problems))

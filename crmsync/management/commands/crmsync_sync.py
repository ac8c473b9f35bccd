import json

from django.core.management.base import BaseCommand, CommandError

from crmsync.conf import app_settings
from crmsync.exceptions import ConfigurationError
from crmsync.registry import connections
from crmsync.sync.engine import SyncEngine


class Command(BaseCommand):
    help = "Run one sync cycle of a connection (or of every configured connection) and print its summary."

    def add_arguments(self, parser):
        parser.add_argument("--connection", help='a key of CRMSYNC["CONNECTIONS"] (default: all)')
        parser.add_argument("--json", action="store_true", help="print one JSON object per connection")

    def handle(self, *args, connection=None, json=False, **options):
        aliases = [connection] if connection else list(app_settings.CONNECTIONS)
        if not aliases:
            raise CommandError('No connection configured: add one to CRMSYNC["CONNECTIONS"].')
        failed = False
        for alias in aliases:
            try:
                run = SyncEngine(alias).run()
            except ConfigurationError as err:
                raise CommandError(str(err)) from err
            finally:
                connections.reset()
            summary = run.summary()
            failed |= summary["status"] == "failed"
            self.stdout.write(self.format(summary, as_json=json))
        if failed:
            raise CommandError("A sync run ended with errors (see error_summary).", returncode=1)

    def format(self, summary: dict, *, as_json: bool) -> str:
        if as_json:
            return json.dumps(summary, sort_keys=True)
        counts = ", ".join(
            f"{key.replace('_', ' ')} {value}" for key, value in summary.items() if isinstance(value, int)
        )
        line = f"{summary['connection']}: {summary['status']} in {summary['duration']:.1f}s — {counts}"
        if summary["error_summary"]:
            line += "\n  " + summary["error_summary"].replace("\n", "\n  ")
        return line

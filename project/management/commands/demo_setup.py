import datetime as dt
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from crmsync.models import Activity, Contact, Opportunity, OutboxEntry, SyncCursor, SyncLink

CONTACTS = [
    ("Ada Lovelace", "ada@analytical.example", "Analytical Engines", "CTO"),
    ("Grace Hopper", "grace@cobol.example", "COBOL Systems", "VP Engineering"),
    ("Alan Turing", "alan@bletchley.example", "Bletchley Labs", "Head of Research"),
    ("Katherine Johnson", "katherine@orbit.example", "Orbit Analytics", "Director"),
]
DEALS = [
    ("Analytical Engines — platform licence", "proposal", "48000", 30, 60, "0.62", "Budget approved for Q1"),
    ("COBOL Systems — migration", "negotiation", "125000", 20, 75, "0.80", "Legal reviewing terms"),
    ("Bletchley Labs — pilot", "discovery", "12000", 45, 25, "0.40", "Needs a security review"),
    ("Orbit Analytics — renewal", "qualification", "30000", 60, 50, "0.55", ""),
    ("Orbit Analytics — expansion", "prospecting", "80000", 90, 10, "0.20", ""),
    ("COBOL Systems — support plan", "closed_won", "18000", -5, 100, "0.95", "Signed"),
]


class Command(BaseCommand):
    help = "Create the demo staff user (demo/demo) and a small demo pipeline (idempotent); DEBUG only."

    def add_arguments(self, parser):
        parser.add_argument(
            "--reset-sync",
            metavar="CONNECTION",
            help="forget this connection's sync state (links, cursors, outbox), e.g. for a fresh emulator",
        )

    def handle(self, *args, reset_sync=None, **options):
        if not settings.DEBUG:
            raise CommandError(
                "demo_setup creates a superuser demo/demo: it runs only with DEBUG on (DEBUG=1), "
                "never on a deployment. Create real staff with createsuperuser."
            )
        User = get_user_model()
        if not User.objects.filter(username="demo").exists():
            User.objects.create_superuser("demo", "demo@example.com", "demo")
        if reset_sync:
            for model in (SyncLink, SyncCursor, OutboxEntry):
                model.objects.filter(connection=reset_sync).delete()
        if not Opportunity.objects.exists():
            self.load_pipeline()
        self.stdout.write(self.style.SUCCESS("Log in at http://127.0.0.1:8000/admin/ as demo / demo"))

    def load_pipeline(self):
        contacts = [
            Contact.objects.create(name=name, email=email, company=company, title=title)
            for name, email, company, title in CONTACTS
        ]
        today = timezone.localdate()
        by_company = {contact.company: contact for contact in contacts}
        for name, stage, value, days, probability, confidence, qualification in DEALS:
            deal = Opportunity.objects.create(
                name=name,
                stage=stage,
                value=Decimal(value),
                close_date=today + dt.timedelta(days=days),
                probability=probability,
                confidence=Decimal(confidence),
                qualification=qualification,
                tags=["demo"],
                contact=by_company[name.split(" — ")[0]],
            )
            Activity.objects.create(
                opportunity=deal, kind="call", subject=f"Intro call: {deal.name}", body="Demo activity"
            )

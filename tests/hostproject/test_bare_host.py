"""The API in a host with DRF's and drf-spectacular's defaults, in a fresh process (the
view classes and schema decorators are built at import: only a new process shows what a
brand-new host gets). The heavy wheel install test does the same from the README."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = """
import json, django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
from django.test import Client
token = Token.objects.create(user=User.objects.create_superuser("agent", "a@example.com", "pw")).key
auth = {"HTTP_AUTHORIZATION": f"Token {token}"}
c = Client()
nested = '{"tags": ' + "[" * 1500 + "]" * 1500 + "}"
print(json.dumps({
    "token": c.get("/api/v1/opportunities/", **auth).status_code,
    "anonymous": c.get("/api/v1/opportunities/").status_code,
    "schema": c.get("/api/schema/?format=json", **auth).status_code,
    "docs": c.get("/api/docs/", **auth).status_code,
    "nested": c.post("/api/v1/opportunities/", nested, content_type="application/json", **auth).status_code,
}))
"""


@pytest.mark.slow
def test_the_api_works_with_a_bare_hosts_settings():
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "tests.hostproject.bare_settings",
    }
    checked = subprocess.run(
        [sys.executable, "-m", "django", "check"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert checked.returncode == 0 and "no issues" in checked.stdout, checked.stdout + checked.stderr
    assert checked.stderr.strip() == "", checked.stderr
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    answers = json.loads(done.stdout.strip().splitlines()[-1])
    assert answers == {"token": 200, "anonymous": 401, "schema": 200, "docs": 200, "nested": 400}, (
        done.stderr[-3000:]
    )

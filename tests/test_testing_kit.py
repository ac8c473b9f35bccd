"""The public test kit (crmsync.testing): a contract base class that runs silently in a
user's suite, and the fake adapter under a documented dotted path."""

import subprocess
import sys
import textwrap
import unittest
from pathlib import Path

import pytest
from django.core.management import call_command

from crmsync.models import Opportunity
from crmsync.testing import AdapterContractTests

ROOT = Path(__file__).resolve().parents[1]


def test_the_contract_base_class_holds_no_test_of_its_own():
    assert unittest.TestLoader().loadTestsFromTestCase(AdapterContractTests).countTestCases() == 0


@pytest.mark.slow
def test_a_users_suite_reports_no_skip_for_the_base_class(tmp_path):
    (tmp_path / "test_my_adapter.py").write_text(
        textwrap.dedent(
            """
            from crmsync.testing import AdapterContractTests, FakeAdapter


            class MyAdapterContract(AdapterContractTests):
                def make_adapter(self):
                    return FakeAdapter(alias="mine")

                def test_update_changes_only_the_given_fields(self):  # overridden: the user's own
                    self.assertTrue(True)
            """
        )
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            "-rs",
            str(tmp_path),
            "--rootdir",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "DJANGO_SETTINGS_MODULE": "tests.settings"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "skipped" not in done.stdout and "SKIPPED" not in done.stdout
    from crmsync.testing.contract import ContractTests

    tests = [name for name in vars(ContractTests) if name.startswith("test_")]
    assert f"{len(tests)} passed" in done.stdout, done.stdout


@pytest.mark.django_db
def test_the_fake_adapter_by_its_name_and_its_dotted_path(settings, capsys):
    for adapter in ("fake", "crmsync.testing.fake.FakeAdapter"):
        settings.CRMSYNC = {"ADAPTERS": {"mine": "crmsync.testing.fake.FakeAdapter"}, "CONNECTIONS": {}}
        settings.CRMSYNC["CONNECTIONS"]["crm"] = {"ADAPTER": "fake" if adapter == "fake" else "mine"}
        Opportunity.objects.create(name=f"Deal for {adapter}")
        call_command("crmsync_sync", "--json")
        assert '"created_remote": 1' in capsys.readouterr().out

"""A brand-new Django project with crmsync installed from its built wheel, following only
the README's "Install crmsync in your Django project" section.

Heavy (runs once in CI): builds the wheel, makes a virtual environment and pip-installs
into it (pip's cache makes that quick), runs `django-admin startproject`, appends the
README's settings and URL snippets verbatim, runs the README's commands, the shipped
Notion emulator as the README says, and a real `runserver`.
"""

import json
import re
import shlex
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest

pytestmark = [pytest.mark.heavy, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
SECTION = "## Install crmsync in your Django project"


def install_section() -> str:
    readme = (ROOT / "README.md").read_text()
    start = readme.index(SECTION)
    end = readme.find("\n### ", start)
    return readme[start:end]


def code_blocks(text: str) -> list[tuple[str, str]]:
    return re.findall(r"```(\w+)\n(.*?)```", text, re.S)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(*args, env=None, cwd=None, timeout=300) -> subprocess.CompletedProcess:
    done = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{args}\n{done.stdout}\n{done.stderr}"
    return done


def http(method, url, *, body=None, headers=None) -> tuple[int, bytes]:
    data = body.encode() if isinstance(body, str) else body
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def wait_for(url, seconds=30.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {seconds} s")


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    """The host project: (manage.py runner, base environment, site directory)."""
    tmp = tmp_path_factory.mktemp("hostproject")
    blocks = code_blocks(install_section())
    (_, pip_line), (_, settings_snippet), (_, urls_snippet), (_, commands) = blocks[:4]
    emulator_block = next(code for lang, code in blocks[4:] if "notion_emulator" in code)

    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp / "dist"), str(ROOT))
    (wheel,) = (tmp / "dist").glob("crmsync-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert "crmsync/py.typed" in names and any(name.endswith("licenses/LICENSE") for name in names), names
    run(sys.executable, "-m", "venv", str(tmp / "venv"))
    python = str(tmp / "venv" / "bin" / "python")
    requirement = re.search(r'pip install "([^"]+)"', pip_line)[1]  # crmsync[notion,postgres]
    assert requirement.startswith("crmsync[")
    run(
        python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        f"{requirement} @ {wheel.as_uri()}",
    )  # fmt: skip
    site = tmp / "site"
    site.mkdir()
    run(str(tmp / "venv" / "bin" / "django-admin"), "startproject", "hostsite", str(site))
    with (site / "hostsite" / "settings.py").open("a") as settings:
        settings.write("\n" + settings_snippet)
    with (site / "hostsite" / "urls.py").open("a") as urls:
        urls.write("\n" + urls_snippet)

    env = {"PATH": f"{tmp / 'venv' / 'bin'}:/usr/bin:/bin", "HOME": str(tmp), "LANG": "C.UTF-8"}

    def manage(*args, extra=None):
        return run(python, "manage.py", *args, env={**env, **(extra or {})}, cwd=site)

    return {
        "tmp": tmp,
        "site": site,
        "python": python,
        "manage": manage,
        "env": env,
        "commands": commands,
        "emulator_block": emulator_block,
    }


def test_the_readme_install_works_in_a_brand_new_project(host):
    manage, commands = host["manage"], host["commands"]
    # `check` is clean before anything is configured: no CRMSYNC_NOTION_TOKEN needed.
    checked = manage("check")
    assert "System check identified no issues (0 silenced)." in checked.stdout
    assert checked.stderr.strip() == "", checked.stderr  # django-q2's retry warning included

    # The README's commands: migrate, a user, its token.
    assert "python manage.py migrate" in commands
    manage("migrate", "--no-input")
    create_user = next(line for line in commands.splitlines() if "createsuperuser" in line)
    manage(*shlex.split(create_user)[2:], "--no-input", extra={"DJANGO_SUPERUSER_PASSWORD": "pw-for-tests"})
    make_token = next(line for line in commands.splitlines() if "drf_create_token" in line).split("#")[0]
    output = manage(*shlex.split(make_token)[2:]).stdout
    token = re.search(r"Generated token (\w+) for user", output)[1]

    # The emulator, run as the README says (on a free port), and its exported settings.
    port = free_port()
    emulator_env, emulator_command = {}, None
    for line in host["emulator_block"].replace("\\\n", " ").splitlines():
        line = line.split("#")[0].strip().rstrip("&").strip()
        if line.startswith("python -m crmsync.testing.notion_emulator"):
            emulator_command = shlex.split(line.replace("8765", str(port)))
        elif line.startswith("export "):
            for assignment in shlex.split(line)[1:]:
                name, value = assignment.split("=", 1)
                emulator_env[name] = value.replace("8765", str(port))
    assert emulator_command and {"CRMSYNC_NOTION_TOKEN", "CRMSYNC_NOTION_DATABASE_ID"} <= set(emulator_env)
    emulator = subprocess.Popen(
        [host["python"], *emulator_command[1:]],
        env=host["env"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    web_port = free_port()
    server = None
    try:
        wait_for(f"http://127.0.0.1:{port}/")
        checked = manage("check", extra=emulator_env)
        assert "no issues" in checked.stdout and checked.stderr.strip() == "", checked.stderr
        manage("migrate", "--no-input", extra=emulator_env)

        server = subprocess.Popen(
            [host["python"], "manage.py", "runserver", f"127.0.0.1:{web_port}", "--noreload"],
            cwd=host["site"],
            env={**host["env"], **emulator_env},
            stdout=subprocess.DEVNULL,
            stderr=(host["tmp"] / "runserver.log").open("w"),
        )
        base = f"http://127.0.0.1:{web_port}"
        wait_for(f"{base}/api/v1/")
        auth = {"Authorization": f"Token {token}"}
        deals = f"{base}/api/v1/opportunities/"
        assert http("GET", deals, headers=auth)[0] == 200
        assert http("GET", deals)[0] == 401
        created = http(
            "POST",
            deals,
            body=json.dumps({"name": "Host deal"}),
            headers={**auth, "Content-Type": "application/json"},
        )
        assert created[0] == 201, created
        nested = '{"name": "Deep", "tags": ' + "[" * 1500 + "]" * 1500 + "}"
        deep = http("POST", deals, body=nested, headers={**auth, "Content-Type": "application/json"})
        assert deep[0] == 400 and b"tags" in deep[1], deep
        schema = http("GET", f"{base}/api/schema/?format=json", headers=auth)
        assert schema[0] == 200 and "/api/v1/opportunities/" in json.loads(schema[1])["paths"]
        status, page = http("GET", f"{base}/api/docs/", headers=auth)
        assert status == 200 and b"swagger-ui" in page
        assets = re.findall(r'(?:src|href)="([^"]+)"', page.decode())
        assert assets and not [url for url in assets if re.match(r"(https?:)?//", url)], assets
        for asset in assets:
            assert http("GET", base + asset)[0] == 200, asset  # served by this host

        # The sync: the API's deal reaches the emulated Notion.
        summary = json.loads(manage("crmsync_sync", "--json", extra=emulator_env).stdout.splitlines()[-1])
        assert summary["status"] == "success" and summary["created_remote"] == 1, summary
    except Exception:
        log = host["tmp"] / "runserver.log"
        print(log.read_text()[-6000:] if log.exists() else "no server log")
        raise
    finally:
        for process in (server, emulator):
            if process is not None:
                process.terminate()
                process.wait(timeout=10)

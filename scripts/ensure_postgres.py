"""Make sure the PostgreSQL server of a URL answers (starting a local one if it is down)."""

import shutil
import subprocess
import sys
import time
from pathlib import Path

import dj_database_url
import psycopg


def connect(config):
    return psycopg.connect(
        host=config["HOST"] or "127.0.0.1",
        port=config["PORT"] or 5432,
        user=config["USER"] or "postgres",
        password=config["PASSWORD"] or None,
        dbname="postgres",
        connect_timeout=3,
        autocommit=True,
    )


def main(url: str) -> None:
    config = dj_database_url.parse(url)
    try:
        connection = connect(config)
    except psycopg.OperationalError as first_error:
        clusters = sorted(Path("/etc/postgresql").glob("*")) if Path("/etc/postgresql").exists() else []
        if not (shutil.which("pg_ctlcluster") and clusters):
            sys.exit(
                f"PostgreSQL at {url} does not answer ({first_error}).\n"
                "Start one, or point the tests at yours with TEST_POSTGRES_URL=postgres://USER:PASS@HOST:PORT/DB."
            )
        print(f"==> starting PostgreSQL {clusters[-1].name}")
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", clusters[-1].name, "main", "start"], check=False
        )
        for _ in range(30):
            try:
                connection = connect(config)
                break
            except psycopg.OperationalError:
                time.sleep(1)
        else:
            sys.exit(f"PostgreSQL at {url} did not start.")
    with connection:
        name = config["NAME"]
        if not connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            connection.execute(f'CREATE DATABASE "{name}"')
    print(f"==> PostgreSQL ready at {url}")


if __name__ == "__main__":
    main(sys.argv[1])

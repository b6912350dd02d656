"""Backups, as the README's "Deploying" section tells an operator to take and restore
them: `pg_dump` of the studio's database, `pg_restore` into a new one, then
`verify_ledger` as the check after the restore. The ledger's append-only trigger comes
back with the data, and drift in the restored copy is found."""

import shutil
import subprocess
import sys

import psycopg
import pytest
from django.db import connection

from jobs.actions import start_fibo
from jobs.models import Job
from jobs.transitions import apply_status
from studio.billing import money
from tests.production import drop_database, fresh_database
from tests.stack import ROOT

pytestmark = pytest.mark.django_db(transaction=True)

PARAMS = {"prompt": "a lighthouse", "aspect_ratio": "1:1", "steps_num": 30, "guidance_scale": "7.5"}


def database_url(name=None):
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return f"postgres://{db['USER'] or 'postgres'}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/" \
           f"{name or db['NAME']}"


@pytest.fixture
def restored(membership, tmp_path):
    """The studio's books (a top-up, a charged job, a released one, one in flight),
    dumped and restored into a new database; the restored database's URL."""
    if connection.vendor != "postgresql" or not (shutil.which("pg_dump") and shutil.which("pg_restore")):
        pytest.skip("backups are of PostgreSQL (set DATABASE_URL), with pg_dump and pg_restore")
    money.top_up(membership.team, 2_000_000, reason="invoice 7", key="backup-topup")
    done, errored, _running = (start_fibo(membership, PARAMS) for _ in range(3))
    Job.objects.filter(pk__in=[done.pk, errored.pk]).update(submission="accepted")
    apply_status(done.pk, "COMPLETED")
    apply_status(errored.pk, "ERROR")
    dump = tmp_path / "studio.dump"
    subprocess.run(["pg_dump", "--format=custom", f"--file={dump}", database_url()], check=True)
    admin_url = database_url("postgres")
    name, url = fresh_database(admin_url)
    try:
        subprocess.run(["pg_restore", "--no-owner", f"--dbname={url}", str(dump)], check=True)
        yield url
    finally:
        drop_database(admin_url, name)


def verify_ledger(url):
    return subprocess.run([sys.executable, "manage.py", "verify_ledger"], cwd=ROOT, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "DATABASE_URL": url, "REDIS_URL": "", "CACHE_URL": ""},
                          timeout=120)


def test_a_restored_backup_verifies_clean(restored):
    result = verify_ledger(restored)
    assert result.returncode == 0, result.stdout + result.stderr
    with psycopg.connect(restored) as conn:
        kinds = [kind for kind, in conn.execute("SELECT kind FROM billing_entry ORDER BY id")]
    assert kinds.count("capture") == 1 and kinds.count("release") == 1 and kinds.count("hold") == 3


def test_drift_in_a_restored_backup_is_named(restored):
    with psycopg.connect(restored, autocommit=True) as conn:
        conn.execute("UPDATE billing_wallet SET balance = balance + 1")
    result = verify_ledger(restored)
    assert result.returncode != 0
    assert "wallet" in (result.stdout + result.stderr).lower()


def test_the_restored_ledger_is_still_append_only(restored):
    with psycopg.connect(restored, autocommit=True) as conn, pytest.raises(psycopg.Error, match="append-only"):
        conn.execute("UPDATE billing_entry SET memo = 'edited'")

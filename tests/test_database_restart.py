"""PostgreSQL restarted under load. The web server (the live server), the worker and the
gateway emulator keep running while the database goes away and comes back: no job is
lost, none is paid twice, and the web app and the worker reconnect by themselves.

PostgreSQL only, and only where this machine runs the cluster (pg_ctlcluster), as it does
in CI."""

import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from django.db import connection
from django_q.tasks import async_task

from jobs.models import Job
from studio.api.models import APIKey
from studio.billing.models import Entry, Wallet
from studio.billing.verify import verify
from tests.stack import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

TERMINAL = ("COMPLETED", "FAILED", "ERROR")


def local_cluster():
    versions = sorted(Path("/etc/postgresql").glob("*/main")) if Path("/etc/postgresql").exists() else []
    return versions[-1].parent.name if versions and shutil.which("pg_ctlcluster") else None


def restart_postgres(version):
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart", "-m", "fast"],
                   check=True, capture_output=True, timeout=60)
    for _ in range(60):
        if subprocess.run(["pg_isready", "-h", "127.0.0.1", "-q"]).returncode == 0:
            return
        time.sleep(0.5)
    raise AssertionError("PostgreSQL did not come back")


def submit(client, base_url, key, count):
    headers = {"Authorization": f"Bearer {key}"}
    answers = [client.post(f"{base_url}/api/jobs/fibo", json={"prompt": f"storm {i}", "seed": i}, headers=headers)
               for i in range(count)]
    assert [a.status_code for a in answers] == [201] * count, [a.text[:200] for a in answers]
    return [a.json()["id"] for a in answers]


def test_postgres_restarted_under_load(member, team, worker, emulator, live_server, settings):
    if connection.vendor != "postgresql":
        pytest.skip("a database restart is tested on PostgreSQL")
    version = local_cluster()
    if version is None:
        pytest.skip("PostgreSQL is not a local cluster this test can restart")
    emulator.configure(delay=1.5, duplicate_rate=1.0)
    _, key = APIKey.issue(team, member, "load")
    with httpx.Client(timeout=30) as client:
        codes = submit(client, live_server.url, key, 4)
        wait_until(lambda: len(emulator.requests()) >= 2, seconds=20, what="jobs at the gateway")

        restart_postgres(version)  # jobs are in flight: webhooks and refreshes are failing now

        # The web app recovers by itself: the next requests reconnect.
        codes += submit(client, live_server.url, key, 4)
    connection.close()  # this test's own connection died with the server

    def finished():
        jobs = Job.objects.filter(code__in=codes)
        return jobs.count() == 8 and all(j.status in TERMINAL and not j.is_live for j in jobs)

    # The worker recovers too. What the outage dropped (a refresh that failed on a dead
    # connection) is settled by the sweeper: its minute schedule, ticked faster here.
    deadline = time.monotonic() + 120
    while not finished():
        assert time.monotonic() < deadline, f"jobs not finished\n{worker.output()[-3000:]}"
        async_task("jobs.tasks.sweep")
        tick = time.monotonic() + 15
        while time.monotonic() < tick and not finished():
            time.sleep(0.5)
    jobs = list(Job.objects.filter(code__in=codes))
    assert {(j.status, j.money) for j in jobs} == {("COMPLETED", "charged")}, [j.error for j in jobs]
    assert sorted(r["request_id"] for r in emulator.requests()) == sorted(j.request_id for j in jobs)
    assert Entry.objects.filter(kind="capture").count() == 8
    wallet = Wallet.objects.get(team=team)
    assert (wallet.balance, wallet.held) == (1_000_000 - 8 * 40_000, 0)
    assert verify() == []

"""`manage.py chaos`: jobs through a real worker and web server against the faulty gateway
emulator, then the money checks; and the failures it must name."""

import os
import re
import subprocess
import sys
import tempfile

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django_q.brokers import get_broker

from datetime import timedelta

from django.utils import timezone

from devtools.chaos import HANG, Faults, chaos_membership, classify, fault_mixes, make_plan
from jobs.models import Job, Lease
from studio.billing import money
from studio.billing.models import Entry
from studio.billing.verify import verify
from studio.worker import heartbeat
from studio.worker.heartbeat import live_clusters
from tests.stack import ROOT, Process, database_env, wait_until

SUMMARY = re.compile(r"chaos: (?P<jobs>\d+) jobs \((?P<completed>\d+) completed, (?P<failed>\d+) failed, "
                     r"(?P<error>\d+) error(?:, (?P<in_flight>\d+) in flight)?\), (?P<faults>\d+) faults injected, "
                     r"(?P<duplicates>\d+) duplicate webhooks absorbed, drift (?P<drift>\d+), stuck (?P<stuck>\d+) — "
                     r"(?P<verdict>OK|FAILED)")

@pytest.fixture
def empty_queue():
    get_broker().purge_queue()  # nothing left over from other tests (Redis outlives them)


def chaos(settings, tmp_path, *args):
    """`manage.py chaos ARGS` as an operator runs it, on this test's database (the logs
    it keeps go to the test's folder)."""
    env = {**os.environ, **database_env(), "MEDIA_ROOT": str(settings.MEDIA_ROOT), "TMPDIR": str(tmp_path)}
    return subprocess.run([sys.executable, "manage.py", "chaos", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def summary(stdout):
    return SUMMARY.fullmatch(stdout.strip().splitlines()[-1])


@pytest.mark.usefixtures("empty_queue")
@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_a_run_ends_every_job_charged_exactly_as_the_gateway_billed(settings, tmp_path):
    result = chaos(settings, tmp_path, "--jobs", "8", "--seed", "1")

    assert result.returncode == 0, result.stdout + result.stderr
    line = summary(result.stdout)
    assert line, result.stdout
    jobs, completed, failed, error, in_flight, faults, duplicates, drift, stuck, verdict = line.groups()
    assert (jobs, in_flight, drift, stuck, verdict) == ("8", None, "0", "0", "OK")
    assert int(completed) + int(failed) + int(error) == 8
    assert int(faults) > 0 and int(duplicates) > 0
    assert "seed 1, 8 jobs" in result.stdout
    assert re.search(r"faults: submit \d+.*; status \d+.*; media \d+", result.stdout)

    # What it printed is what the database says.
    team_jobs = Job.objects.filter(team__slug="chaos")
    assert team_jobs.count() == 8 and not team_jobs.in_flight().exists()
    assert Entry.objects.filter(kind="capture").count() == int(completed) + int(failed)
    assert Entry.objects.filter(kind="release").count() == int(error)
    assert verify() == []


@pytest.mark.usefixtures("empty_queue")
@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_a_wallet_that_drifted_from_its_ledger_fails_the_run_and_is_named(settings, tmp_path):
    team = chaos_membership().team
    money.top_up(team, 1_000_000, reason="test credit", key="chaos-test")
    with connection.cursor() as cursor:  # behind the ORM's back, as drift would come
        cursor.execute("UPDATE billing_wallet SET balance = balance + 1 WHERE team_id = %s", [team.pk])

    result = chaos(settings, tmp_path, "--jobs", "1", "--fault-rate", "0")

    assert result.returncode == 1, result.stdout + result.stderr
    # One micro-dollar more than the ledger, whatever the (random) job ended as.
    assert re.search(r"^DRIFT team chaos: wallet says balance \$\d+\.\d*1 held \$0\.00, ledger says balance \$\d+\.\d+ ",
                     result.stderr, re.MULTILINE), result.stderr
    assert "WARNING before the run: team chaos: wallet says balance $6.000001 held $0.00" in result.stderr
    line = summary(result.stdout)
    assert line and line["verdict"] == "FAILED" and int(line["drift"]) >= 1, result.stdout
    assert "drift(s)" in result.stderr and "logs kept in" in result.stderr


@pytest.mark.usefixtures("empty_queue")
@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_jobs_that_do_not_end_in_time_are_named_as_stuck(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the kept logs go
    with pytest.raises(CommandError, match=r"0 drift\(s\), 2 stuck job\(s\)"):
        call_command("chaos", "--jobs", "2", "--seed", "3", "--timeout", "1", "--delay", "60", "--fault-rate", "0")

    out, err = capsys.readouterr()
    line = summary(out)
    assert line and (line["in_flight"], line["stuck"], line["verdict"]) == ("2", "2", "FAILED"), out
    for job in Job.objects.filter(team__slug="chaos"):
        assert f"STUCK job {job.code} ({job.model}) still {job.status}: submission" in err


def test_faults_are_seeded_per_kind_and_leave_every_call_a_last_attempt():
    mixes = fault_mixes(lost_submits=False)
    first, again = Faults(5, 1.0, mixes), Faults(5, 1.0, mixes)

    drawn = [first.draw("status", "req-1") for _ in range(5)]
    assert drawn[:3] == [again.draw("status", "req-1") for _ in range(3)]
    assert None not in drawn[:3] and drawn[3:] == [None, None], "three faults, then the fourth attempt gets through"
    assert first.draw("status", "req-2") is not None
    assert first.total == 4
    assert Faults(5, 0.0, mixes).draw("media", "req-1") is None


def test_a_dropped_submit_is_only_scheduled_when_the_run_outlasts_the_sweeper():
    assert "close" not in fault_mixes(lost_submits=False)["submit"]
    assert HANG in fault_mixes(lost_submits=False)["submit"]
    assert "close" in fault_mixes(lost_submits=True)["submit"]


def test_requests_are_told_apart_by_kind_and_job():
    code = "4b1c2b39-5a0e-4f5e-9d0b-1b2f0c3d4e5f"
    hook = {"X-Webhook-URL": f"http://127.0.0.1:8000/hooks/pixazo/{code}/secret/"}
    assert classify("POST", "/bria-fibo-bbq-preview/v1/bria-fibo-bbq-preview-request", hook) == ("submit", code)
    assert classify("GET", "/v2/requests/status/r-1", {}) == ("status", "r-1")
    assert classify("GET", "/v1/r-1/output.png", {}) == ("media", "r-1")
    assert classify("POST", "/_emulator/faults", {}) == (None, None)


def test_the_plan_is_the_seeds():
    assert make_plan(9, 12) == make_plan(9, 12)
    assert {p.outcome for p in make_plan(9, 200)} == {"COMPLETED", "FAILED", "ERROR"}
    assert {p.outcome for p in make_plan(9, 200) if p.model == "rmbg"} == {"COMPLETED"}


# Another worker cluster on the database ---------------------------------------------------------

def cluster_leases():
    return list(Lease.objects.filter(name__startswith=heartbeat.PREFIX).values_list("holder", flat=True))


@pytest.mark.usefixtures("empty_queue")
@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_a_run_refuses_to_start_while_another_worker_cluster_is_live(settings, tmp_path):
    cluster = Process.manage("qcluster", ["qcluster"], {**database_env(), "Q_WORKERS": "1"}, tmp_path)
    try:
        [holder] = wait_until(live_clusters, seconds=60, what=lambda: f"the cluster's heartbeat\n{cluster.output()}")
        assert holder.endswith(f":{cluster.pid}")

        result = chaos(settings, tmp_path, "--jobs", "1", "--force")

        assert result.returncode == 1, result.stdout + result.stderr
        assert f"chaos: a worker cluster is running on this database ({holder}) and would take the run's tasks: " \
               "stop it and run again" in result.stderr
        assert not Job.objects.exists(), "nothing was started"
    finally:
        cluster.stop()
    assert cluster.exit_code() == 0 and cluster_leases() == [], "a cluster that stops says so at once"


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_a_killed_cluster_on_this_host_no_longer_counts(tmp_path):
    cluster = Process.manage("qcluster", ["qcluster"], {**database_env(), "Q_WORKERS": "1"}, tmp_path)
    try:
        wait_until(live_clusters, seconds=60, what=lambda: f"the cluster's heartbeat\n{cluster.output()}")
    finally:
        cluster.kill()  # SIGKILL: no chance to take its lease back
    assert len(cluster_leases()) == 1 and live_clusters() == [], "its process is gone from this host"


def test_a_cluster_on_another_host_counts_until_its_lease_lapses(db):
    Lease.objects.create(name=f"{heartbeat.PREFIX}elsewhere", holder="worker-2:4242",
                         expires_at=timezone.now() + timedelta(seconds=heartbeat.LASTS_SECONDS))
    assert live_clusters() == ["worker-2:4242"]
    with pytest.raises(CommandError, match=r"a worker cluster is running on this database \(worker-2:4242\)"):
        call_command("chaos", "--jobs", "1")
    assert live_clusters(timezone.now() + timedelta(seconds=heartbeat.LASTS_SECONDS + 1)) == []


"""Stopping the worker (`manage.py qcluster`) with SIGTERM, as a deploy or a scale-down
does, while it is busy: every process of the cluster is gone within 10 s. A poller loop
ends at its next safe point and hands polling over to the next worker; a submit stalled
at the gateway is killed at the stop deadline and left as a crash leaves it, for its
webhook or the sweeper, and is never sent twice. (SIGKILL: tests/test_faults.py.)"""

import contextlib
import os
import signal
import time

import psutil
import pytest
from django_q.brokers import get_broker
from django_q.tasks import async_task

from jobs.models import Job, Lease
from tests.conftest import login
from tests.stack import Process, wait_until
from tests.test_faults import all_finished, assert_paid_once, submit, worker_env

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

KILLED = "were killed"  # what the cluster logs when the deadline cut tasks off


def running_in_group(pgid):
    """The processes of a process group still running (zombies waiting for their reaper
    are gone for this purpose)."""
    running = []
    for process in psutil.process_iter(["status"]):
        with contextlib.suppress(psutil.Error, OSError):
            if os.getpgid(process.pid) == pgid and process.info["status"] != psutil.STATUS_ZOMBIE:
                running.append(process.pid)
    return running


def sigterm(worker, whole_group=False):
    """SIGTERM to the cluster's main process alone, as Docker and Kubernetes send it, or
    to every process of its group, as Heroku and honcho do. Returns the seconds until no
    process of the group is left running."""
    assert len(running_in_group(worker.pid)) > 3, "the cluster is up: main, sentinel, workers, pusher, monitor"
    started = time.monotonic()
    if whole_group:
        os.killpg(worker.pid, signal.SIGTERM)
    else:
        worker.popen.terminate()
    wait_until(lambda: worker.exit_code() is not None and not running_in_group(worker.pid), seconds=20,
               interval=0.05, what=lambda: f"{worker.name} and its processes gone\n{worker.log_tail()}")
    return time.monotonic() - started


def poller_running():
    return Lease.objects.filter(name__startswith="status-poller:").exists()


def polling_worker(member, emulator, settings, tmp_path):
    """A worker without webhooks, busy in its poller loop (50 s at a time) over two jobs
    in flight. Returns it, its environment and the jobs."""
    emulator.configure(delay=120)  # in flight until the test completes them
    get_broker().purge_queue()
    env = {**worker_env(settings, emulator.url), "PIXAZO_WEBHOOKS": "false"}
    worker = Process.manage("qcluster", ["qcluster"], env, tmp_path)
    jobs = submit(login(member), 2)
    wait_until(lambda: len(emulator.requests()) == 2 and poller_running(), seconds=30,
               what=lambda: f"the jobs at the gateway, polled\n{worker.output()}")
    return worker, env, jobs


def test_a_worker_stopped_in_its_poller_loop_is_gone_at_once_and_hands_polling_over(
        member, team, emulator, live_server, settings, tmp_path):
    # SIGTERM ends the loop before its next job, the cluster stops well before the
    # deadline, and the loop's hand-over task starts polling in the next worker.
    settings.PUBLIC_BASE_URL = live_server.url
    worker, env, jobs = polling_worker(member, emulator, settings, tmp_path)
    try:
        seconds = sigterm(worker)
    finally:
        worker.stop()
    assert seconds < settings.Q_STOP_SECONDS, f"stopped in {seconds:.1f} s\n{worker.log_tail()}"
    assert KILLED not in worker.output()
    assert not poller_running(), "the loop ended at a safe point and gave its lease back"
    restarted = Process.manage("qcluster-restarted", ["qcluster"], env, tmp_path)
    try:
        for job in Job.objects.all():
            emulator.complete(job.request_id)
        wait_until(lambda: all_finished(jobs), seconds=30, what=lambda: f"jobs finished\n{restarted.output()}")
        assert_paid_once(team, jobs, emulator.requests())
    finally:
        restarted.stop()


def test_a_sigterm_to_the_whole_group_ends_every_process_at_once(member, emulator, live_server, settings, tmp_path):
    # django-q2's sentinel and workers keep SIGTERM's default action: they end on the
    # spot, as in a crash, and the main process must not wait for them forever.
    settings.PUBLIC_BASE_URL = live_server.url
    worker, _, _ = polling_worker(member, emulator, settings, tmp_path)
    try:
        seconds = sigterm(worker, whole_group=True)
    finally:
        worker.stop()
    assert seconds < settings.Q_STOP_SECONDS, f"stopped in {seconds:.1f} s\n{worker.log_tail()}"


def test_a_worker_stopped_mid_submit_is_gone_within_10_s_and_the_job_is_paid_once(
        member, team, worker, emulator, settings, tmp_path):
    # The gateway stalls on the POST beyond the stop deadline: the worker holding it is
    # killed there, as a crash would kill it. The job stays "submitting", is never sent
    # again (not by the sweeper either), and its webhook brings the request_id home once
    # the gateway answers.
    emulator.faults(submit=["hang:20"])
    [job] = submit(login(member))
    wait_until(lambda: not emulator.pending_faults()["submit"], what="the POST stalled at the gateway")
    seconds = sigterm(worker)
    assert seconds < 10, f"stopped in {seconds:.1f} s\n{worker.log_tail()}"
    assert KILLED in worker.output()
    job = Job.objects.get(pk=job.pk)
    assert (job.status, job.submission, job.money, job.request_id) == ("QUEUED", "submitting", "held", None)
    restarted = Process.manage("qcluster-restarted", ["qcluster"], worker_env(settings, emulator.url), tmp_path)
    try:
        async_task("jobs.tasks.sweep")  # the minute's tick: an uncertain submit is left to its webhook
        wait_until(lambda: all_finished([job]), seconds=45, what=lambda: f"job finished\n{restarted.output()}")
        assert_paid_once(team, [job], emulator.requests())
    finally:
        restarted.stop()

"""What a worker's tasks do once its cluster is asked to stop (the flag `qcluster` arms,
studio/worker/stopping.py): nothing new begins, and every loop and retry ends at its next
safe point, leaving the rest to the next worker or the sweeper. (The real cluster under
SIGTERM: tests/test_worker_stop.py.)"""

import time

import pytest
from django.utils import timezone

from jobs import tasks
from jobs.actions import start_fibo
from jobs.gateway import GatewayError, PixazoClient
from jobs.models import Job, Lease
from jobs.transitions import apply_status
from studio.api import tasks as callbacks
from studio.worker import stopping
from tests.receiver import receiver  # noqa: F401 (a fixture)

PARAMS = {"prompt": "a lighthouse at dusk", "aspect_ratio": "1:1", "seed": 7, "steps_num": 30, "guidance_scale": "7.5"}


@pytest.fixture
def stop_flag(monkeypatch):
    """This process as a worker of a cluster: `stopping.request()` asks it to stop."""
    monkeypatch.setattr(stopping, "_flag", None)  # and none again after the test
    stopping.arm()


@pytest.fixture
def queued(monkeypatch):
    queued = []
    monkeypatch.setattr(tasks, "async_task", lambda name, *args: queued.append((name, *args)))
    return queued


def test_a_submit_not_begun_goes_back_to_the_queue(membership, emulator, stop_flag, queued):
    job = start_fibo(membership, PARAMS)
    stopping.request()
    assert tasks.submit_job(job.pk) == "handed back"
    assert queued == [("jobs.tasks.submit_job", job.pk)]
    assert Job.objects.get(pk=job.pk).submission == "pending" and emulator.requests() == []


def test_the_gateway_client_retries_no_more(emulator, stop_flag):
    emulator.faults(status=[503, 503])
    stopping.request()
    with PixazoClient() as client, pytest.raises(GatewayError) as refused:
        client.status("bria-fibo-bbq-preview_unknown")
    assert refused.value.status_code == 503
    assert emulator.pending_faults()["status"] == [503], "one attempt, not the three allowed"


def test_a_callback_stops_retrying_and_stays_owed_for_the_sweeper(membership, receiver, stop_flag):
    job = start_fibo(membership, PARAMS, client_webhook_url=receiver.url, client_webhook_mode="terminal")
    Job.objects.filter(pk=job.pk).update(submission="accepted", request_id="cb-1")
    apply_status(job.pk, "ERROR", error="boom")
    receiver.answers = [500] * callbacks.ATTEMPTS
    stopping.request()
    assert callbacks.deliver_callback(job.pk, "ERROR") == "stopping"
    job = Job.objects.get(pk=job.pk)
    assert len(receiver.received) == 1 and job.client_callback_owed_since and job.client_callback_attempts == 1


def test_a_poller_loop_ends_before_its_next_job_and_hands_over(membership, emulator, stop_flag, queued):
    emulator.configure(delay=60)
    job = start_fibo(membership, PARAMS)
    assert tasks.submit_job(job.pk) == "accepted"
    Job.objects.filter(pk=job.pk).update(next_poll_at=timezone.now())
    queued.clear()
    stopping.request()
    started = time.monotonic()
    assert tasks.poll_in_flight(max_seconds=30) == "done"
    assert time.monotonic() - started < 1
    assert list(Job.objects.due_for_poll()) == [Job.objects.get(pk=job.pk)], "not polled: still due"
    assert not Lease.objects.filter(name__startswith=tasks.POLLER_LEASE).exists()
    assert queued == [("jobs.tasks.poll_in_flight",)]

"""Client callbacks of the gateway-compatible API are owed state: owed from the status
change that calls for one, delivered once (a copy of the task sends nothing), still owed
while the client fails or the outputs are being copied, given up after CALLBACK_TASKS
deliveries, and sent again by the sweeper when overdue. (A worker killed in the middle
of a callback: tests/test_faults.py.)"""

import json
import logging
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone
from django_q.tasks import async_task

from jobs.actions import start_fibo
from jobs.models import Job
from jobs.transitions import apply_status
from studio.api import tasks as callbacks
from studio.api.models import APIKey
from tests import test_faults as faults
from tests.receiver import receiver  # noqa: F401 (a fixture)
from tests.stack import Process, kill_cluster, wait_until

PARAMS = {"prompt": "a lighthouse at dusk", "aspect_ratio": "1:1", "seed": 7, "steps_num": 30, "guidance_scale": "7.5"}


def accepted_job(membership, receiver, mode="terminal"):
    job = start_fibo(membership, PARAMS, client_webhook_url=receiver.url, client_webhook_mode=mode)
    Job.objects.filter(pk=job.pk).update(submission="accepted", request_id=f"cb-{job.pk}")
    return job


def owed(job):
    job = Job.objects.get(pk=job.pk)
    return job.client_callback_owed_since, job.client_callback_attempts


def test_a_status_change_that_calls_for_a_callback_owes_it(membership, receiver):
    terminal, sync = accepted_job(membership, receiver), accepted_job(membership, receiver, mode="sync")
    apply_status(terminal.pk, "PROCESSING")
    apply_status(sync.pk, "PROCESSING")
    assert owed(terminal) == (None, 0), "terminal mode: only the end is called back"
    assert owed(sync) == (Job.objects.get(pk=sync.pk).updated_at, 0)
    apply_status(terminal.pk, "ERROR", error="boom")
    assert owed(terminal) == (Job.objects.get(pk=terminal.pk).completed_at, 0)


def test_a_delivered_callback_is_owed_no_more_and_a_copy_of_its_task_sends_nothing(membership, receiver):
    job = accepted_job(membership, receiver)
    apply_status(job.pk, "ERROR", error="boom")
    assert callbacks.deliver_callback(job.pk, "ERROR") == "delivered"
    assert owed(job) == (None, 1)
    assert callbacks.deliver_callback(job.pk, "ERROR") == "nothing owed"
    assert [body["status"] for body in receiver.received] == ["ERROR"]


def test_a_failing_client_keeps_the_callback_owed_until_it_is_given_up(membership, receiver, monkeypatch, caplog):
    monkeypatch.setattr(callbacks, "ATTEMPTS", 1)  # one POST per delivery, no backoff to wait out
    receiver.answers = [500, 503, 502]
    job = accepted_job(membership, receiver)
    apply_status(job.pk, "ERROR", error="boom")
    since = owed(job)[0]
    assert callbacks.deliver_callback(job.pk, "ERROR") == "failed"
    assert callbacks.deliver_callback(job.pk, "ERROR") == "failed"
    assert owed(job) == (since, 2)
    with caplog.at_level(logging.WARNING, logger="studio.api.tasks"):
        assert callbacks.deliver_callback(job.pk, "ERROR") == "gave up"
    assert owed(job) == (None, 3) and len(receiver.received) == 3
    assert f"job {job.code}: gave up calling the client back after 3 deliveries" in caplog.text
    assert callbacks.deliver_callback(job.pk, "ERROR") == "nothing owed"


def test_a_delivery_cut_off_by_a_crash_counts_against_the_bound(membership, receiver):
    job = accepted_job(membership, receiver)
    apply_status(job.pk, "ERROR", error="boom")
    Job.objects.filter(pk=job.pk).update(client_callback_attempts=callbacks.CALLBACK_TASKS)
    assert callbacks.deliver_callback(job.pk, "ERROR") == "gave up"
    assert receiver.received == [] and owed(job)[0] is None


@pytest.mark.django_db(transaction=True)
def test_a_later_status_change_keeps_its_own_callback_owed(membership, receiver):
    # The job completes while its PROCESSING callback is on the wire: delivering that
    # one must not settle the COMPLETED callback owed since.
    job = accepted_job(membership, receiver, mode="sync")
    apply_status(job.pk, "PROCESSING")

    def fail_meanwhile():  # in the receiver's thread, on a connection of its own
        apply_status(job.pk, "FAILED", error="no luck")
        connection.close()

    receiver.on_post = fail_meanwhile
    receiver.answers = [200]
    assert callbacks.deliver_callback(job.pk, "PROCESSING") == "delivered"
    assert owed(job) == (Job.objects.get(pk=job.pk).completed_at, 0)
    receiver.on_post = None
    assert callbacks.deliver_callback(job.pk, "FAILED") == "delivered"
    assert [body["status"] for body in receiver.received] == ["PROCESSING", "FAILED"]
    assert owed(job) == (None, 1)


def test_a_completed_job_is_called_back_once_its_outputs_are_stored(membership, receiver):
    job = accepted_job(membership, receiver)
    apply_status(job.pk, "COMPLETED", media_urls=["https://cdn.example/out.png"])
    assert callbacks.deliver_callback(job.pk, "COMPLETED") == "waiting for the outputs"
    assert owed(job)[1] == 0 and receiver.received == []
    Job.objects.filter(pk=job.pk).update(outputs_fetched=True)
    assert callbacks.deliver_callback(job.pk, "COMPLETED") == "delivered"
    assert [body["status"] for body in receiver.received] == ["COMPLETED"]


def test_the_sweeper_sends_again_the_callbacks_owed_for_a_while(membership, receiver, monkeypatch):
    queued = []
    monkeypatch.setattr(callbacks, "async_task", lambda name, *args: queued.append((name, *args)))
    fresh, overdue, fetching = (accepted_job(membership, receiver) for _ in range(3))
    apply_status(fresh.pk, "ERROR", error="boom")
    apply_status(overdue.pk, "FAILED", error="no luck")
    apply_status(fetching.pk, "COMPLETED", media_urls=["https://cdn.example/out.png"])
    earlier = timezone.now() - callbacks.CALLBACK_RESEND_AFTER - timedelta(seconds=1)
    Job.objects.filter(pk__in=[overdue.pk, fetching.pk]).update(client_callback_owed_since=earlier)
    callbacks.resend_overdue_callbacks(timezone.now())
    assert queued == [("studio.api.tasks.deliver_callback", overdue.pk, "FAILED")]


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("worker_env", [{"FETCH_ALLOW_PRIVATE_ADDRESSES": "true"}])  # the receiver is on loopback
def test_a_callback_lost_with_a_killed_worker_is_sent_again_by_the_sweeper(
        team, member, receiver, worker, emulator, settings, tmp_path):
    # The client's endpoint hangs and the worker dies while calling it. On the Redis
    # broker that task is gone for good; on the ORM broker it would come back after the
    # queue's retry (2 minutes): either way the callback is still owed, and the sweeper
    # sends it.
    settings.API_ALLOW_HTTP_CALLBACKS = True
    receiver.stall = threading.Event()
    answer = Client(HTTP_HOST="127.0.0.1").post(
        "/bria-fibo-bbq-preview/v1/bria-fibo-bbq-preview-request", json.dumps({"prompt": "a lighthouse"}),
        content_type="application/json", HTTP_OCP_APIM_SUBSCRIPTION_KEY=APIKey.issue(team, member, "script")[1],
        HTTP_X_WEBHOOK_URL=receiver.url)
    assert answer.status_code == 202
    wait_until(lambda: receiver.received, seconds=30, what=lambda: f"the callback at the client\n{worker.output()}")
    job = Job.objects.get()
    assert job.status == "COMPLETED" and job.client_callback_owed_since is not None
    kill_cluster(worker)
    receiver.stall.set()  # the client is back (the cut-off request's answer goes nowhere)
    env = {**faults.worker_env(settings, emulator.url), "FETCH_ALLOW_PRIVATE_ADDRESSES": "true"}
    restarted = Process.manage("qcluster-restarted", ["qcluster"], env, tmp_path)
    try:
        earlier = timezone.now() - callbacks.CALLBACK_RESEND_AFTER - timedelta(seconds=1)
        Job.objects.filter(pk=job.pk).update(client_callback_owed_since=earlier)  # time passes
        async_task("jobs.tasks.sweep")  # the minute schedule's tick
        wait_until(lambda: owed(job)[0] is None, seconds=30, what=lambda: f"the callback settled\n{restarted.output()}")
    finally:
        restarted.stop()
    first, second = receiver.received
    assert first["request_id"] == second["request_id"] and first["status"] == second["status"] == "COMPLETED"
    assert second["output"]["media_url"]
    assert owed(job) == (None, 2), "delivered by the second delivery"

"""The per-job webhook: token first, duplicates absorbed, and a hint only — money moves
on what the status endpoint confirms."""

import json
import time

import pytest
from django.test import Client
from django_q.brokers import get_broker
from django_q.signing import SignedPackage

from jobs import tasks
from jobs.actions import start_fibo
from jobs.models import Job, WebhookDelivery, hash_token
from studio.billing.models import Entry

PARAMS = {"prompt": "a lighthouse", "aspect_ratio": "1:1", "steps_num": 30, "guidance_scale": "7.5"}
TOKEN = "t" * 43


@pytest.fixture
def job(membership):
    job = start_fibo(membership, PARAMS)
    Job.objects.filter(pk=job.pk).update(
        submission="accepted", request_id="bria-fibo-bbq-preview_abc",
        webhook_token_hash=hash_token(TOKEN),
    )
    get_broker().purge_queue()
    return Job.objects.get(pk=job.pk)


def body(job, status="COMPLETED", **extra):
    payload = {"request_id": job.request_id, "status": status, "model_id": "bria-fibo-bbq-preview",
               "error": None, "output": None, "created_at": "2026-05-22T13:17:32.110Z"}
    payload.update(extra)
    return payload


def deliver(job, payload, token=TOKEN, code=None):
    url = f"/hooks/pixazo/{code or job.code}/{token}/"
    return Client(HTTP_HOST="127.0.0.1").post(url, json.dumps(payload), content_type="application/json")


def queued_refreshes():
    """The refresh tasks waiting in the queue, whichever broker (ORM or Redis) it is."""
    broker = get_broker()
    tasks = []
    while (batch := broker.dequeue()):
        tasks += [SignedPackage.loads(payload) for _, payload in batch]
    return [t for t in tasks if t["func"] == "jobs.tasks.refresh_job"]


def test_a_valid_webhook_wakes_the_job_but_moves_no_money(job):
    response = deliver(job, body(job))
    assert response.status_code == 200
    job.refresh_from_db()
    assert job.status == "QUEUED" and job.money == "held", "a webhook alone never moves money"
    assert Entry.objects.filter(job=job).exclude(kind="hold").count() == 0
    assert len(queued_refreshes()) == 1


def test_a_duplicate_of_a_confirmed_status_is_acknowledged_and_ignored(job):
    Job.objects.filter(pk=job.pk).update(status="PROCESSING")
    assert deliver(job, body(job, "PROCESSING")).status_code == 200
    assert deliver(job, body(job, "PROCESSING")).status_code == 200
    assert len(queued_refreshes()) == 1
    delivery = WebhookDelivery.objects.get(job=job)
    assert delivery.duplicates == 1


def test_a_repeat_claiming_more_than_is_confirmed_wakes_the_job_again(job):
    # The first COMPLETED came before the gateway's status caught up (the refresh found
    # the job still running): the next copy may be the real one, so it wakes the job too.
    assert deliver(job, body(job)).status_code == 200
    assert deliver(job, body(job)).status_code == 200
    assert len(queued_refreshes()) == 2
    assert WebhookDelivery.objects.get(job=job).duplicates == 1


@pytest.mark.parametrize("token", ["wrong-token", "t" * 42, ""])
def test_a_forged_token_is_rejected_and_changes_nothing(job, token):
    response = deliver(job, body(job), token=token or "x")
    assert response.status_code == 404
    assert not WebhookDelivery.objects.exists() and not queued_refreshes()
    job.refresh_from_db()
    assert job.status == "QUEUED"


def test_an_unknown_job_is_rejected(job):
    response = deliver(job, body(job), code="00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404


def test_a_job_without_a_token_accepts_no_webhook(membership):
    job = start_fibo(membership, PARAMS)
    assert deliver(job, {"request_id": "x", "status": "COMPLETED"}, token="anything").status_code == 404


@pytest.mark.parametrize("raw", [b"not json", b"[]", b'{"status": "COMPLETED"}', b'{"request_id": "x", "status": "DONE"}'])
def test_a_malformed_body_is_400(job, raw):
    response = Client(HTTP_HOST="127.0.0.1").post(f"/hooks/pixazo/{job.code}/{TOKEN}/", raw, content_type="application/json")
    assert response.status_code == 400
    assert not WebhookDelivery.objects.exists()


def test_an_oversized_body_is_refused(job):
    response = deliver(job, body(job, error="x" * 70_000))
    assert response.status_code == 413


def test_another_jobs_request_id_is_refused(job):
    response = deliver(job, body(job, request_id="bria-fibo-bbq-preview_other"))
    assert response.status_code == 400
    assert not queued_refreshes()


def test_only_post_is_allowed(job):
    response = Client(HTTP_HOST="127.0.0.1").get(f"/hooks/pixazo/{job.code}/{TOKEN}/")
    assert response.status_code == 405


def test_the_webhook_brings_home_a_request_id_whose_submit_answer_was_lost(job):
    Job.objects.filter(pk=job.pk).update(submission="submitting", request_id=None)
    job.refresh_from_db()
    assert deliver(job, {**body(job), "request_id": "bria-fibo-bbq-preview_recovered"}).status_code == 200
    job.refresh_from_db()
    assert job.request_id == "bria-fibo-bbq-preview_recovered" and job.submission == "accepted"


def test_out_of_order_webhooks_end_in_the_confirmed_state(membership, emulator, settings):
    """COMPLETED arrives, then a late PROCESSING: the job ends COMPLETED, charged once."""
    job = start_fibo(membership, PARAMS)
    tasks.submit_job(job.pk)
    job.refresh_from_db()
    emulator.complete(job.request_id)
    token = "k" * 43
    Job.objects.filter(pk=job.pk).update(webhook_token_hash=hash_token(token))
    for _ in range(100):
        if tasks.refresh_job(job.pk) == "COMPLETED":
            break
        time.sleep(0.05)
    assert deliver(job, body(job, "COMPLETED"), token=token).status_code == 200
    assert deliver(job, body(job, "PROCESSING"), token=token).status_code == 200
    tasks.refresh_job(job.pk)
    job.refresh_from_db()
    assert job.status == "COMPLETED" and job.money == "charged"
    assert Entry.objects.filter(job=job, kind="capture").count() == 1

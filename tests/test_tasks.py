"""The worker's side of a job's life, run task by task against the emulator: submit,
poll, fetch outputs, settle — and what happens when the gateway misbehaves."""

import time
from datetime import timedelta

import httpx
import pytest
from django.core import mail
from django.utils import timezone

from devtools.emulator.images import render_fibo
from jobs import tasks, transitions
from jobs.actions import start_fibo, start_rmbg_from_upload, start_rmbg_from_url
from jobs.gateway import PixazoClient
from jobs.models import Job
from studio.billing.models import Entry, Wallet
from studio.library.models import Asset
from tests.smtp import run_queued_email
from tests.stack import wait_until

PARAMS = {"prompt": "a lighthouse at dusk", "aspect_ratio": "16:9", "seed": 7, "steps_num": 30, "guidance_scale": "7.5"}


def reload(job):
    return Job.objects.get(pk=job.pk)


def balance(job):
    w = Wallet.objects.get(team=job.team_id)
    return w.balance, w.held


def finish(job, emulator, status="COMPLETED"):
    """Let the gateway finish the job, then poll it as the poller would until the
    gateway reports it terminal."""
    emulator.complete(reload(job).request_id, status)
    return poll_until_terminal(job)


def poll_until_terminal(job, seconds=10):
    deadline = time.monotonic() + seconds
    with PixazoClient() as client:
        while time.monotonic() < deadline:
            seen = tasks.poll_once(client, reload(job))
            if seen in ("COMPLETED", "FAILED", "ERROR"):
                return seen
            time.sleep(0.05)
    raise AssertionError(f"job still {seen} after {seconds} s")


def test_submit_sends_the_job_and_stores_its_request_id(membership, emulator):
    job = start_fibo(membership, PARAMS)
    assert tasks.submit_job(job.pk) == "accepted"
    job = reload(job)
    assert job.submission == "accepted" and job.status == "QUEUED"
    assert job.request_id.startswith("bria-fibo-bbq-preview_") and job.next_poll_at
    [request] = emulator.requests()
    assert request["body"] == {"prompt": "a lighthouse at dusk", "aspect_ratio": "16:9", "seed": 7,
                               "steps_num": 30, "guidance_scale": 7.5}


def test_submit_twice_reaches_the_gateway_once(membership, emulator):
    job = start_fibo(membership, PARAMS)
    tasks.submit_job(job.pk)
    assert tasks.submit_job(job.pk) == "already claimed"
    assert len(emulator.requests()) == 1


def test_a_completed_job_is_charged_and_its_image_stored(membership, emulator):
    job = start_fibo(membership, PARAMS)
    tasks.submit_job(job.pk)
    assert finish(job, emulator) == "COMPLETED"
    job = reload(job)
    assert (job.status, job.money, job.outputs_fetched) == ("COMPLETED", "charged", True)
    [asset] = job.assets.all()
    assert (asset.role, asset.width, asset.height, asset.media_type) == ("output", 1024, 576, "image/png")
    assert asset.file.read().startswith(b"\x89PNG") and asset.thumbnail.size > 0
    assert len(asset.sha256) == 64
    assert balance(job) == (960_000, 0)


def test_a_failed_job_is_charged_and_shows_the_gateways_message(membership, emulator):
    job = start_fibo(membership, PARAMS)
    emulator.outcomes("FAILED")
    tasks.submit_job(job.pk)
    finish(job, emulator, "FAILED")
    job = reload(job)
    assert (job.status, job.money) == ("FAILED", "charged")
    assert "Generation failed" in job.error
    assert balance(job) == (960_000, 0)


def test_an_errored_job_is_released(membership, emulator):
    job = start_fibo(membership, PARAMS)
    tasks.submit_job(job.pk)
    finish(job, emulator, "ERROR")
    job = reload(job)
    assert (job.status, job.money) == ("ERROR", "released") and job.error
    assert balance(job) == (1_000_000, 0)


def test_polling_follows_queued_processing_completed(membership, emulator):
    # A second in each status: a busy machine's pause between two polls skips none.
    emulator.configure(delay=3.0)
    job = start_fibo(membership, PARAMS)
    tasks.submit_job(job.pk)
    seen = []
    deadline = time.monotonic() + 10
    with PixazoClient() as client:
        while time.monotonic() < deadline:
            seen.append(tasks.poll_once(client, reload(job)))
            if seen[-1] == "COMPLETED":
                break
            time.sleep(0.05)
    assert seen[0] == "QUEUED" and "PROCESSING" in seen and seen[-1] == "COMPLETED"
    assert reload(job).money == "charged"


@pytest.mark.parametrize("code", [400, 401, 403, 404])
def test_a_permanent_refusal_fails_the_job_without_charge(membership, emulator, code):
    emulator.faults(submit=[code])
    job = start_fibo(membership, PARAMS)
    assert tasks.submit_job(job.pk) == "refused"
    job = reload(job)
    assert (job.status, job.money, job.submission) == ("FAILED", "released", "rejected")
    assert f"({code})" in job.error
    assert balance(job) == (1_000_000, 0)


def test_the_studios_gateway_account_out_of_balance_alerts_staff(membership, emulator, settings, empty_queue,
                                                                 django_capture_on_commit_callbacks):
    settings.ADMINS = [("Staff", "staff@example.com")]
    emulator.faults(submit=[402])
    job = start_fibo(membership, PARAMS)
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.submit_job(job.pk) == "out of balance"
    job = reload(job)
    assert (job.status, job.money) == ("ERROR", "released") and "staff have been alerted" in job.error
    assert balance(job) == (1_000_000, 0)
    assert mail.outbox == []  # queued by the submit task, sent by a task of its own
    assert run_queued_email() == ["sent"]
    [message] = mail.outbox
    assert message.to == ["staff@example.com"] and message.from_email == settings.SERVER_EMAIL
    assert message.subject == "[Bria Studio] Pixazo gateway account is out of balance"
    assert f"Job {job.code} was refused" in message.body


def test_a_gateway_that_is_down_leaves_the_job_waiting_held(membership, emulator):
    emulator.faults(submit=[500, 503, 429])
    job = start_fibo(membership, PARAMS)
    assert tasks.submit_job(job.pk) == "deferred"
    job = reload(job)
    assert (job.status, job.money, job.submission, job.submit_attempts) == ("QUEUED", "held", "pending", 1)
    assert "will try again" in job.error and job.next_poll_at > timezone.now()
    assert balance(job) == (1_000_000, 40_000)


def test_a_waiting_job_is_offered_again_when_due_and_then_taken(membership, emulator, monkeypatch):
    enqueued = []
    monkeypatch.setattr(tasks, "async_task", lambda name, *args: enqueued.append((name, *args)))
    emulator.faults(submit=[500, 503, 429])
    job = start_fibo(membership, PARAMS)
    tasks.submit_job(job.pk)
    tasks.resubmit_due()
    assert ("jobs.tasks.submit_job", job.pk) not in enqueued, "not due yet"
    Job.objects.filter(pk=job.pk).update(next_poll_at=timezone.now())
    tasks.resubmit_due()
    tasks.resubmit_due()
    assert enqueued.count(("jobs.tasks.submit_job", job.pk)) == 1, "due: offered again, once"
    assert tasks.submit_job(job.pk) == "accepted"
    job = reload(job)
    assert (job.submission, job.error) == ("accepted", "") and job.request_id
    assert len(emulator.requests()) == 1


def test_a_gateway_that_stays_down_past_the_window_ends_in_error_without_charge(membership, emulator):
    emulator.faults(submit=[500, 503, 429])
    job = start_fibo(membership, PARAMS)
    Job.objects.filter(pk=job.pk).update(created_at=timezone.now() - tasks.SUBMIT_RETRY_FOR)
    assert tasks.submit_job(job.pk) == "refused"
    job = reload(job)
    assert (job.status, job.money) == ("ERROR", "released") and "unavailable" in job.error
    assert balance(job) == (1_000_000, 0)


def test_a_gateway_that_recovers_within_the_retries_takes_the_job(membership, emulator):
    emulator.faults(submit=[500, 429])
    job = start_fibo(membership, PARAMS)
    assert tasks.submit_job(job.pk) == "accepted"


def test_a_lost_submit_answer_is_never_resent(membership, emulator):
    emulator.faults(submit=["hang:3"])
    job = start_fibo(membership, PARAMS)
    assert tasks.submit_job(job.pk) == "outcome unknown"
    job = reload(job)
    assert (job.submission, job.status, job.money) == ("submitting", "QUEUED", "held")
    # The gateway takes the job once its hang ends; the sweep after that must add nothing.
    wait_until(emulator.requests, seconds=10, what="the lost submit at the gateway")
    tasks.sweep()
    assert len(emulator.requests()) == 1, "the sweeper does not resend an uncertain submit"


def test_the_sweeper_gives_up_on_an_uncertain_submit_without_charge(membership, emulator):
    job = start_fibo(membership, PARAMS)
    Job.objects.filter(pk=job.pk).update(submission="submitting", updated_at=timezone.now() - tasks.SUBMIT_UNCERTAIN_AFTER)
    tasks.sweep()
    job = reload(job)
    assert (job.status, job.money) == ("ERROR", "released") and "never confirmed" in job.error


def test_a_status_outage_leaves_the_job_in_flight_and_backs_off(membership, emulator):
    job = start_fibo(membership, PARAMS)
    tasks.submit_job(job.pk)
    emulator.faults(status=[500, 500, 500])
    with PixazoClient() as client:
        assert tasks.poll_once(client, reload(job)) == "status unavailable"
    job = reload(job)
    assert job.status == "QUEUED" and job.poll_failures == 1 and job.money == "held"


def test_rmbg_from_an_upload_sends_a_signed_studio_url(membership, emulator, live_server, settings):
    settings.PUBLIC_BASE_URL = live_server.url
    png = render_fibo("a red cube", 3, "1:1")
    job = start_rmbg_from_upload(membership, png)
    assert job.source_asset.role == "input" and job.price == 18_000
    tasks.submit_job(job.pk)
    [request] = emulator.requests()
    assert request["body"]["image_url"].startswith(f"{live_server.url}/m/")
    finish(job, emulator)
    job = reload(job)
    assert (job.status, job.money) == ("COMPLETED", "charged")
    output = job.outputs[0]
    assert output.media_type == "image/png" and output.sha256 != job.source_asset.sha256
    assert balance(job) == (982_000, 0)


def test_rmbg_of_a_pasted_url_stores_the_input_and_sends_the_studios_copy(membership, emulator, live_server, settings):
    settings.PUBLIC_BASE_URL = live_server.url
    settings.FETCH_ALLOW_PRIVATE_ADDRESSES = True  # the picture is served on loopback here
    source = httpx.post(f"{emulator.url}/bria-fibo-bbq-preview/v1/bria-fibo-bbq-preview-request",
                        json={"prompt": "a cube", "seed": 1}, headers={"Ocp-Apim-Subscription-Key": "test-key"}).json()
    emulator.complete(source["request_id"])
    media_url = wait_for_media(emulator, source["request_id"])
    job = start_rmbg_from_url(membership, media_url)
    assert tasks.submit_job(job.pk) == "accepted"
    job = reload(job)
    assert job.source_asset.role == "input" and job.source_asset.team == job.team
    [request] = [r for r in emulator.requests() if r["model_id"] == "bria-rmbg-2-0-682"]
    assert request["body"]["image_url"].startswith(f"{live_server.url}/m/")
    assert finish(job, emulator) == "COMPLETED"


def wait_for_media(emulator, request_id):
    for _ in range(100):
        body = httpx.get(f"{emulator.url}/v2/requests/status/{request_id}",
                         headers={"Ocp-Apim-Subscription-Key": "test-key"}).json()
        if body["status"] == "COMPLETED":
            return body["output"]["media_url"][0]
        time.sleep(0.05)
    raise AssertionError("the source image never finished")


@pytest.mark.parametrize("url, reason", [
    ("http://127.0.0.1:9/nothing.png", "private or local address"),
    ("http://10.0.0.1/a.png", "private or local address"),
    ("http://169.254.169.254/latest/meta-data/", "private or local address"),
    ("http://[::1]/a.png", "private or local address"),
    ("http://localhost/a.png", "private or local address"),
    ("http://no-such-host.invalid/a.png", "could not be found"),
])
def test_rmbg_of_an_unusable_url_ends_in_error_before_the_gateway_without_charge(membership, emulator, url, reason):
    job = start_rmbg_from_url(membership, url)
    assert tasks.submit_job(job.pk) == "refused"
    job = reload(job)
    assert (job.status, job.money, job.submission) == ("ERROR", "released", "rejected")
    assert reason in job.error
    assert emulator.requests() == [], "nothing reached the gateway"
    assert balance(job) == (1_000_000, 0)


def test_a_download_failure_is_retried_by_the_sweeper(membership, emulator):
    job = start_fibo(membership, PARAMS)
    tasks.submit_job(job.pk)
    emulator.faults(media=[500, 500, 500])
    finish(job, emulator)
    job = reload(job)
    assert job.status == "COMPLETED" and job.money == "charged" and not job.outputs_fetched
    assert job.is_live, "the card keeps waiting for its image"
    tasks.sweep()
    job = reload(job)
    assert job.outputs_fetched and Asset.objects.filter(job=job).count() == 1
    assert Entry.objects.filter(job=job, kind="capture").count() == 1


def test_a_job_the_gateway_no_longer_knows_ends_in_error_without_charge(membership, emulator):
    job = start_fibo(membership, PARAMS)
    Job.objects.filter(pk=job.pk).update(submission="accepted", request_id="bria-fibo-bbq-preview_forgotten")
    with PixazoClient() as client:
        answers = [tasks.poll_once(client, reload(job)) for _ in range(tasks.LOST_AFTER_NOT_FOUND)]
    assert answers == ["status unavailable"] * (tasks.LOST_AFTER_NOT_FOUND - 1) + ["lost"]
    job = reload(job)
    assert (job.status, job.money) == ("ERROR", "released") and "no longer knows" in job.error
    assert balance(job) == (1_000_000, 0)


# -- the writes the tasks make through jobs/transitions.py ---------------------------


def test_a_job_is_claimed_for_its_submit_once(membership):
    job = start_fibo(membership, PARAMS)
    assert transitions.claim_submit(job.pk, "hash-1") is True
    assert transitions.claim_submit(job.pk, "hash-2") is False
    assert (reload(job).submission, reload(job).webhook_token_hash) == ("submitting", "hash-1")


def test_a_lost_submit_never_adopts_another_jobs_request_id(membership, emulator):
    first, second = start_fibo(membership, PARAMS), start_fibo(membership, PARAMS)
    assert tasks.submit_job(first.pk) == "accepted"
    assert transitions.claim_submit(second.pk, "hash")
    assert transitions.adopt_request_id(reload(second), reload(first).request_id) is False
    assert (reload(second).request_id, reload(second).submission) == (None, "submitting")
    assert transitions.adopt_request_id(reload(second), "bria-fibo-bbq-preview_its-own") is True
    assert (reload(second).request_id, reload(second).submission) == ("bria-fibo-bbq-preview_its-own", "accepted")


def test_a_deferred_job_is_offered_again_by_one_turn_only(membership):
    job = start_fibo(membership, PARAMS)
    transitions.claim_submit(job.pk, "hash")
    now = timezone.now()
    transitions.defer_submit(reload(job), 1, now, "The gateway is unavailable; the studio will try again.")
    assert (reload(job).submission, reload(job).submit_attempts) == ("pending", 1)
    later = now + timedelta(seconds=30)
    assert transitions.offer_again(job.pk, now, later) is True
    assert transitions.offer_again(job.pk, now, later) is False, "the next turn finds it taken"

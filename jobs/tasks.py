"""django-q2 tasks. Each takes ids, reloads its rows and is safe to run twice: django-q2
delivers at least once."""

import hashlib
import logging
import os
import secrets
import socket
import time
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django_q.tasks import async_task

from jobs import contract, transitions
from jobs.addresses import FetchRefused
from jobs.fetch import fetch_image_url
from jobs.gateway import GatewayError, OutOfBalance, PixazoClient, SubmitOutcomeUnknown
from jobs.models import Job, Lease, Status, hash_token
from jobs.transitions import apply_status, fail_before_gateway
from studio.api.tasks import resend_overdue_callbacks
from studio.library.media import signed_media_url
from studio.library.models import STORAGE_ERRORS, Asset, BadImage
from studio.mail import queue_mail_admins
from studio.worker import stopping

logger = logging.getLogger(__name__)

# Each worker cluster's poller loop holds a lease named with this prefix (renewed every
# turn, so a dead loop's lapses soon); another lease spaces out the starts of new loops.
POLLER_LEASE = "status-poller"
POLLER_LEASE_SECONDS = 30
POLLER_RUN_SECONDS = 50
POLLER_START_LEASE = "poller-start"
POLLER_START_EVERY_SECONDS = 10
# A poller claims this many due jobs at a time, for this long (poll_once then sets each
# one's real next poll; a claim outlives a poller that died holding it, briefly).
POLL_BATCH = 10
POLL_CLAIM_SECONDS = 60
# A submit whose answer was lost stays "submitting" this long, waiting for its webhook
# to bring the request_id home, before the sweeper gives up on it (without charge).
SUBMIT_UNCERTAIN_AFTER = timedelta(minutes=10)
# A job whose submit task has not claimed it by then lost its task (Redis broker).
PENDING_LOST_AFTER = timedelta(minutes=5)
# While the gateway cannot take jobs (connection refused, 429, 5xx after the client's own
# retries), a job it never received waits, held, and is offered again with backoff
# (2, 4, 8 … up to 60 s); only after this long does it end in ERROR, without charge.
SUBMIT_RETRY_FOR = timedelta(minutes=15)
SUBMIT_RETRY_MAX_DELAY = 60
MAX_FETCH_ATTEMPTS = 10
# Status checks in a row answered 404 before a job is taken as lost by the gateway (a
# few, spaced by the polling backoff: one 404 could be the gateway's own hiccup).
LOST_AFTER_NOT_FOUND = 5


def webhooks_enabled():
    if not settings.PIXAZO_WEBHOOKS:
        return False
    return settings.PUBLIC_BASE_URL.startswith("https://") or settings.PIXAZO_ALLOW_HTTP_WEBHOOKS


def webhook_url(job, token):
    return settings.PUBLIC_BASE_URL + reverse("pixazo_webhook", args=[job.code, token])


def next_poll_at(job, now=None):
    """Poll every 5 s, 10 s once the job is a minute old; with webhooks on, polling is
    only a safety net: every 30 s, then every minute."""
    now = now or timezone.now()
    age = now - (job.submitted_at or now)
    if webhooks_enabled():
        delay = 30 if age < timedelta(minutes=5) else 60
    else:
        delay = 5 if age < timedelta(minutes=1) else 10
    return now + timedelta(seconds=delay * (1 + min(job.poll_failures, 5)))


# -- submit -------------------------------------------------------------------------


def submit_job(job_id):
    if stopping.requested():
        # Not begun: back to the queue for another worker, rather than a POST that the
        # stop deadline could cut off (the job would then wait out the uncertain window).
        async_task("jobs.tasks.submit_job", job_id)
        return "handed back"
    token = secrets.token_urlsafe(32)
    if not transitions.claim_submit(job_id, hash_token(token)):
        return "already claimed"
    job = Job.objects.select_related("source_asset", "team", "created_by").get(pk=job_id)
    if job.model == Job.Model.RMBG and job.source_asset is None:
        try:
            store_pasted_input(job)
        except (FetchRefused, BadImage) as exc:
            # The studio's own fetch failed, not the gateway: an ERROR, never charged
            # (FAILED is the gateway's verdict, and the gateway bills it).
            fail_before_gateway(job_id, Status.ERROR, f"The image could not be used: {exc} You were not charged.")
            return "refused"
    try:
        with PixazoClient() as client:
            submitted = client.submit(
                job.model, gateway_payload(job),
                webhook_url=webhook_url(job, token) if webhooks_enabled() else None,
                webhook_mode=settings.PIXAZO_WEBHOOK_MODE,
            )
    except SubmitOutcomeUnknown:
        logger.warning("job %s: submit answer lost; waiting for its webhook or the sweeper", job.code)
        return "outcome unknown"
    except OutOfBalance as exc:
        # Queued, not sent here: a dead mail server must not hold up or fail this task.
        queue_mail_admins("Pixazo gateway account is out of balance", f"Job {job.code} was refused: {exc}")
        logger.critical("gateway account out of balance: %s", exc)
        fail_before_gateway(job_id, Status.ERROR, "The studio's gateway account is out of balance; staff have been "
                                                  "alerted. You were not charged.")
        return "out of balance"
    except GatewayError as exc:
        if exc.permanent:
            fail_before_gateway(job_id, Status.FAILED, f"The gateway refused this job: {exc}")
            return "refused"
        if timezone.now() - job.created_at < SUBMIT_RETRY_FOR:
            defer_submit(job, exc)
            return "deferred"
        fail_before_gateway(job_id, Status.ERROR, f"The gateway was unavailable: {exc}. You were not charged.")
        return "refused"
    accept(job, submitted.request_id)
    return "accepted"


def defer_submit(job, exc):
    """The gateway did not take the job (it never got it, or refused it for now): give
    the claim back and offer it again later; the poller loop re-enqueues it when due."""
    attempts = job.submit_attempts + 1
    delay = min(2 ** attempts, SUBMIT_RETRY_MAX_DELAY) * (0.5 + secrets.randbelow(1000) / 2000)
    transitions.defer_submit(job, attempts, timezone.now() + timedelta(seconds=delay),
                             f"The gateway is unavailable ({exc}); the studio will try again.")
    logger.warning("job %s: gateway unavailable (%s); offering it again in %.1f s", job.code, exc, delay)
    kick_poller()


def gateway_payload(job):
    if job.model == Job.Model.FIBO:
        return contract.fibo_payload(job.params)
    # The gateway fetches the studio's own copy of the input, through a signed URL.
    return contract.rmbg_payload(signed_media_url(job.source_asset))


def store_pasted_input(job):
    """Copy the image behind a pasted URL into the studio's storage as the job's input,
    so that every RMBG input is an asset of the team like an upload."""
    data = fetch_image_url(job.params["image_url"])
    asset = Asset.from_bytes(data, team=job.team, role=Asset.Role.INPUT, created_by=job.created_by)
    asset.save()
    transitions.attach_input(job, asset)


def accept(job, request_id):
    transitions.accept(job, request_id, next_poll_at(job))
    if not webhooks_enabled():
        kick_poller()


# -- status -------------------------------------------------------------------------


def refresh_job(job_id):
    """Ask the gateway, under our own key, where the job stands, and apply it. A webhook
    only triggers this: money moves on what the status endpoint confirms."""
    job = Job.objects.get(pk=job_id)
    if not job.request_id or not job.is_live:
        return "nothing to do"
    with PixazoClient() as client:
        return poll_once(client, job)


def poll_once(client, job):
    try:
        status = client.status(job.request_id)
    except GatewayError as exc:
        if exc.status_code == 404 and job.poll_failures + 1 >= LOST_AFTER_NOT_FOUND:
            # The gateway has forgotten the job (purged, or never kept it): it will
            # neither finish nor bill it, so it ends here, and the hold goes back.
            logger.error("job %s: the gateway no longer knows %s", job.code, job.request_id)
            apply_status(job.pk, Status.ERROR, error="The gateway no longer knows this job. You were not charged.")
            return "lost"
        logger.warning("job %s: status check failed: %s", job.code, exc)
        transitions.count_poll_failure(job, next_poll_at(job))
        return "status unavailable"
    if status.status == Status.COMPLETED:
        fetch_outputs(job.pk, status.media_urls, client=client)
        apply_status(job.pk, Status.COMPLETED, media_urls=status.media_urls)
    elif status.status in (Status.FAILED, Status.ERROR):
        apply_status(job.pk, status.status, error=status.error or "The gateway gave no reason.")
    else:
        apply_status(job.pk, status.status)
        transitions.schedule_poll(job, next_poll_at(job))
    return status.status


def fetch_outputs(job_id, media_urls, client=None):
    """Copy the outputs into the studio's storage, once: a slot already filled (by a
    concurrent webhook refresh, say) is skipped, and a lost insert race is discarded."""
    job = Job.objects.select_related("team", "created_by").get(pk=job_id)
    if job.outputs_fetched:
        return
    if not media_urls:
        transitions.record_fetch(job, error="The gateway reported no output for this job.")
        return
    owns_client = client is None
    client = client or PixazoClient()
    done = set(job.assets.filter(role=Asset.Role.OUTPUT).values_list("index", flat=True))
    try:
        for index, url in enumerate(media_urls):
            if index not in done:
                data, _ = client.download(url)
                _store_output(job, index, data)
    except (GatewayError, BadImage, *STORAGE_ERRORS) as exc:
        # The storage being down is as transient as the gateway's CDN: the sweeper tries again.
        logger.warning("job %s: output download failed: %s", job.code, exc)
        permanent = isinstance(exc, BadImage) or getattr(exc, "permanent", False)
        if permanent or job.fetch_attempts + 1 >= MAX_FETCH_ATTEMPTS:
            transitions.record_fetch(job, error=f"The image could not be copied to the studio: {exc}")
        else:
            transitions.count_fetch_attempt(job)
        return
    finally:
        if owns_client:
            client.close()
    transitions.record_fetch(job)


def _store_output(job, index, data):
    asset = Asset.from_bytes(data, team=job.team, role=Asset.Role.OUTPUT, job=job, index=index,
                             created_by=job.created_by)
    try:
        with transaction.atomic():
            asset.save()
    except IntegrityError:
        asset.file.delete(save=False)
        asset.thumbnail.delete(save=False)


# -- the status pollers -------------------------------------------------------------


def acquire_lease(name, holder, seconds):
    now = timezone.now()
    Lease.objects.get_or_create(name=name, defaults={"expires_at": now})
    return bool(Lease.objects.filter(name=name, expires_at__lte=now).update(
        holder=holder, expires_at=now + timedelta(seconds=seconds)))


def renew_lease(name, holder, seconds):
    """Extend a lease; False if it lapsed and another holder has taken it."""
    return bool(Lease.objects.filter(name=name, holder=holder).update(
        expires_at=timezone.now() + timedelta(seconds=seconds)))


def release_lease(name, holder):
    # Deleted, not expired: a cluster's lease is named after it, and a restarted cluster
    # has a new name.
    Lease.objects.filter(name=name, holder=holder).delete()


def cluster_poller_lease():
    """The lease of this worker cluster's poller loop. A django-q2 worker's parent is its
    cluster's sentinel, so the host and the parent process name the cluster."""
    cluster = f"{socket.gethostname()}:{os.getppid()}"
    return f"{POLLER_LEASE}:{hashlib.sha256(cluster.encode()).hexdigest()[:32]}"


def kick_poller():
    """Start a poller loop unless one runs somewhere; cheap to call after every submit.
    Used without webhooks, and for jobs waiting for the gateway to come back: otherwise
    the sweeper's minute is the safety net."""
    if not Lease.objects.filter(name__startswith=POLLER_LEASE + ":", expires_at__gt=timezone.now()).exists():
        start_poller()


def start_poller():
    """Enqueue one more poller loop, at most once per POLLER_START_EVERY_SECONDS across
    the studio (a burst of submits starts one, not one each). The task runs on whichever
    cluster takes it first, and stands down where a loop already runs."""
    if acquire_lease(POLLER_START_LEASE, secrets.token_hex(8), POLLER_START_EVERY_SECONDS):
        async_task("jobs.tasks.poll_in_flight")


def poll_in_flight(max_seconds=POLLER_RUN_SECONDS):
    """A poller loop: about once a second, for up to `max_seconds`, it offers the gateway
    again the jobs it could not take and polls a batch of due jobs it claims; then it
    hands over to a fresh task while jobs remain in flight. django-q2 cannot delay a task
    by seconds; this loop gives the 5–10 s cadence without one task per poll.

    One loop per worker cluster (its lease), so every cluster keeps workers for submits;
    a loop that finds more due than it keeps up with recruits another, which a cluster
    without one takes up: more clusters, more polling. Claims keep any two loops off the
    same job. A stopping worker ends its loop before the next job."""
    lease, holder = cluster_poller_lease(), secrets.token_hex(8)
    if not acquire_lease(lease, holder, POLLER_LEASE_SECONDS):
        return "this cluster is polling already"
    try:
        with PixazoClient() as client:
            deadline = time.monotonic() + max_seconds
            while time.monotonic() < deadline and _needs_poller() and not stopping.requested():
                resubmit_due()
                if webhooks_enabled() or len(poll_due(client, deadline)) < POLL_BATCH:
                    stopping.wait(1)
                else:
                    start_poller()  # a full batch: more is due than this loop polls
                if not renew_lease(lease, holder, POLLER_LEASE_SECONDS):
                    break  # it lapsed during a long turn, and another loop took over
    finally:
        release_lease(lease, holder)
    if _needs_poller():
        async_task("jobs.tasks.poll_in_flight")
    return "done"


def claim_due(limit=POLL_BATCH):
    """Claim up to `limit` jobs due for a poll, for POLL_CLAIM_SECONDS: poll_once then
    sets each one's real next poll."""
    return transitions.claim_polls(limit, timedelta(seconds=POLL_CLAIM_SECONDS))


def poll_due(client, deadline):
    """Poll, once each, a batch of due jobs this poller claims, until `deadline` (on
    time.monotonic()) or a stop; claims left unused go back. Returns the jobs polled."""
    jobs = claim_due()
    for index, job in enumerate(jobs):
        if time.monotonic() > deadline or stopping.requested():
            transitions.release_polls(jobs[index:])
            return jobs[:index]
        poll_once(client, job)
    return jobs


def resubmit_due(now=None):
    """Offer the gateway again the jobs it could not take, once their wait is over."""
    now = now or timezone.now()
    for job_id in _deferred().filter(next_poll_at__lte=now).values_list("pk", flat=True)[:100]:
        # Pushed on first, so the next turn of the loop does not enqueue it again.
        if transitions.offer_again(job_id, now, now + timedelta(seconds=30)):
            async_task("jobs.tasks.submit_job", job_id)


def _accepted_in_flight():
    return Job.objects.in_flight().filter(submission=Job.Submission.ACCEPTED)


def _deferred():
    return Job.objects.filter(status=Status.QUEUED, submission=Job.Submission.PENDING, submit_attempts__gt=0)


def _needs_poller():
    return _deferred().exists() or (not webhooks_enabled() and _accepted_in_flight().exists())


# -- the sweeper (a django-q2 schedule, every minute) -------------------------------


def sweep():
    """Settle what the fast paths left behind."""
    now = timezone.now()
    lost = Job.objects.filter(submission=Job.Submission.PENDING, submit_attempts=0,
                              created_at__lt=now - PENDING_LOST_AFTER)
    for job_id in lost.values_list("pk", flat=True):
        async_task("jobs.tasks.submit_job", job_id)
    resubmit_due(now)
    uncertain = Job.objects.in_flight().filter(submission=Job.Submission.SUBMITTING, updated_at__lt=now - SUBMIT_UNCERTAIN_AFTER)
    for job_id in uncertain.values_list("pk", flat=True):
        fail_before_gateway(job_id, Status.ERROR, "The gateway never confirmed this job. You were not charged.")
    unfetched = Job.objects.filter(status=Status.COMPLETED, outputs_fetched=False, output_error="")
    for job in unfetched:
        if stopping.requested():
            break  # the next sweep goes on
        fetch_outputs(job.pk, job.media_urls)
    resend_overdue_callbacks(now)
    if webhooks_enabled():
        # Webhooks are the fast path; this is the slow safety net for lost callbacks, in
        # claimed batches while they come back full (the next sweep goes on where this
        # one stops, inside the task timeout).
        deadline = time.monotonic() + POLLER_RUN_SECONDS
        with PixazoClient() as client:
            polled = POLL_BATCH
            while polled == POLL_BATCH:
                polled = len(poll_due(client, deadline))
    if _needs_poller():
        kick_poller()

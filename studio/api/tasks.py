"""Calling back clients of the gateway-compatible API, as the gateway would: the status
body POSTed to their X-Webhook-URL, retried with backoff, never to a private address.

A callback is owed from the commit of the status change that calls for it
(jobs/transitions.py marks the job) until it is delivered, refused or given up. The task
that delivers it can be lost with a worker (the Redis broker forgets a task once a
worker has taken it) or fail while the client is down, so the sweeper sends again the
callbacks owed for a while, up to CALLBACK_TASKS deliveries in all. Delivery is at least
once, as the gateway's own: a client may see a callback twice.
"""

import logging
import random
from datetime import timedelta

import httpx
from django_q.tasks import async_task

from jobs.addresses import FetchRefused, check_url
from jobs import transitions
from jobs.fetch import public_client
from jobs.models import Job, Status
from studio.worker import stopping

logger = logging.getLogger(__name__)

ATTEMPTS = 4  # POSTs per delivery
TIMEOUT_SECONDS = 5
CALLBACK_TASKS = 3  # deliveries (tasks) per owed callback before giving up
CALLBACK_RESEND_AFTER = timedelta(minutes=2)


def deliver_callback(job_id, status=None):
    """POST the job's status body, as it is now, to the client if a callback is still
    owed. `status`, the change that called for it, only informs whoever reads the queue."""
    from studio.api.gateway import (
        status_body,  # the same body the status endpoint serves
    )

    job = Job.objects.with_card_data().get(pk=job_id)
    owed = job.client_callback_owed_since
    if owed is None:
        return "nothing owed"  # delivered already, by another copy of this task
    if job.status == Status.COMPLETED and job.is_live:
        return "waiting for the outputs"  # the body says COMPLETED once they are stored
    try:
        check_url(job.client_webhook_url)
    except FetchRefused as exc:
        logger.warning("job %s: callback not sent: %s", job.code, exc)
        _settle(job, owed)
        return "refused"
    if not _count_delivery(job, owed):
        return _give_up(job, owed)  # a crash cut off its last delivery
    try:
        delivered = _post_with_retries(job, status_body(job))
    except FetchRefused as exc:
        logger.warning("job %s: callback not sent: %s", job.code, exc)
        _settle(job, owed)
        return "refused"
    if delivered:
        _settle(job, owed)
        return "delivered"
    if job.client_callback_attempts + 1 < CALLBACK_TASKS:
        return "stopping" if stopping.requested() else "failed"  # still owed: the sweeper sends it again
    return _give_up(job, owed)


def resend_overdue_callbacks(now):
    """Queue again the callbacks owed for longer than CALLBACK_RESEND_AFTER (run by the
    sweeper every minute; a job still copying its outputs waits for them)."""
    overdue = (Job.objects.filter(client_callback_owed_since__lt=now - CALLBACK_RESEND_AFTER)
               .exclude(status=Status.COMPLETED, outputs_fetched=False, output_error=""))
    for job_id, status in overdue.values_list("pk", "status"):
        async_task("studio.api.tasks.deliver_callback", job_id, status)


def _count_delivery(job, owed):
    """Count this delivery against the callback owed since `owed` (before the POSTs, so
    deliveries cut off by a crash count too)."""
    return transitions.count_callback_delivery(job, owed, CALLBACK_TASKS)


def _give_up(job, owed):
    if not _settle(job, owed):
        return "superseded"  # a later status change owes a callback of its own
    logger.warning("job %s: gave up calling the client back after %d deliveries", job.code, CALLBACK_TASKS)
    return "gave up"


def _settle(job, owed):
    return transitions.settle_callback(job, owed)


def _post_with_retries(job, body):
    """True once the client answered 2xx; False after ATTEMPTS, or sooner if the worker
    stops."""
    for attempt in range(1, ATTEMPTS + 1):
        # Pinned to the addresses it checks, so the name cannot be re-pointed at a
        # private address between the check and the connection.
        try:
            with public_client(TIMEOUT_SECONDS) as client:
                response = client.post(job.client_webhook_url, json=body)
            if 200 <= response.status_code < 300:
                return True
            logger.info("job %s: callback answered %s", job.code, response.status_code)
        except httpx.HTTPError as exc:
            logger.info("job %s: callback failed: %s", job.code, type(exc).__name__)
        if attempt < ATTEMPTS and stopping.wait(random.uniform(0, 0.5 * 2 ** (attempt - 1))):
            return False
    return False

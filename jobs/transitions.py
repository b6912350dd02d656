"""The one function that applies a status to a job, used by the submit task, the status
poller, the webhook refresh and the sweeper alike.

Statuses only move forward (QUEUED → PROCESSING → COMPLETED | FAILED | ERROR): a
duplicate or late event is acknowledged and ignored. The terminal transition and its
money effect commit in one transaction, under the job's row lock, so two workers that
learn the same news at once book it once.
"""

import logging

from django.db import transaction
from django.utils import timezone

from jobs.models import RANK, TERMINAL, Job, Status
from jobs.queue import enqueue
from studio.billing import money
from studio.ops.metrics import observe_completed

logger = logging.getLogger(__name__)


def apply_status(job_id, status, *, error="", media_urls=None, submission=None, next_poll_at=None):
    """Move the job to `status` if that is forward. Returns True if it moved."""
    status = Status(status)
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id)
        if RANK[status] <= RANK[Status(job.status)]:
            return False
        now = timezone.now()
        job.status = status
        job.updated_at = now
        if submission:
            job.submission = submission
        if next_poll_at is not None:
            job.next_poll_at = next_poll_at
        if media_urls:
            job.media_urls = media_urls
        if status in TERMINAL:
            job.completed_at = now
            job.next_poll_at = None
            job.error = error[:2000]
            _settle(job)
        # The client of the studio's gateway-compatible API asked to hear about it: the
        # callback is owed from this commit until delivered (studio/api/tasks.py).
        callback = job.client_webhook_url and (status in TERMINAL or job.client_webhook_mode == "sync")
        if callback:
            job.client_callback_owed_since, job.client_callback_attempts = now, 0
        job.save()
        if callback:
            enqueue("studio.api.tasks.deliver_callback", job.pk, status)
    logger.info("job %s is now %s", job.code, status)
    if status == Status.COMPLETED:
        observe_completed(job)
    return True


def _settle(job):
    if job.is_chargeable:
        money.capture(job)
        job.money = Job.Money.CHARGED
    else:
        money.release(job)
        job.money = Job.Money.RELEASED


def fail_before_gateway(job_id, status, error):
    """The gateway never took the job (refused it, or could not be reached): it ends
    FAILED or ERROR without charge."""
    return apply_status(job_id, status, error=error, submission=Job.Submission.REJECTED)

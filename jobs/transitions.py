"""Every write to a job's row, so the tasks (jobs/tasks.py) and the webhook receiver
only decide and do the I/O around them.

`apply_status` is the one function that applies a status to a job, used by the submit
task, the status poller, the webhook refresh and the sweeper alike. Statuses only move
forward (QUEUED → PROCESSING → COMPLETED | FAILED | ERROR): a duplicate or late event is
acknowledged and ignored. The terminal transition and its money effect commit in one
transaction, under the job's row lock, so two workers that learn the same news at once
book it once.

The other writes move a job along its submission (claimed, deferred, accepted, its
request_id adopted from a webhook), its polling (claimed by a poller, rescheduled) and
the copy of its outputs. Each is one conditional UPDATE: whoever loses a race changes
nothing, so every task stays safe to run twice.
"""

import logging

from django.db import IntegrityError, transaction
from django.db.models import F
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


# -- submission ---------------------------------------------------------------------


def claim_submit(job_id, token_hash):
    """Claim a pending job for its POST; committed before it, so a second delivery of the
    submit task finds the job no longer pending and the gateway is never paid twice.
    True if this call claimed it."""
    return bool(Job.objects.filter(pk=job_id, submission=Job.Submission.PENDING, status=Status.QUEUED).update(
        submission=Job.Submission.SUBMITTING, webhook_token_hash=token_hash, updated_at=timezone.now()))


def attach_input(job, asset):
    """The image behind a pasted URL, now in the studio's storage, is the job's input."""
    Job.objects.filter(pk=job.pk).update(source_asset=asset, updated_at=timezone.now())
    job.source_asset = asset


def defer_submit(job, attempts, retry_at, error):
    """The gateway did not take the job: the claim goes back, and the job is offered
    again at `retry_at`."""
    Job.objects.filter(pk=job.pk, submission=Job.Submission.SUBMITTING, status=Status.QUEUED).update(
        submission=Job.Submission.PENDING, submit_attempts=attempts, next_poll_at=retry_at, error=error,
        updated_at=timezone.now(),
    )


def offer_again(job_id, now, until):
    """Take a deferred job that is due (its next try pushed on to `until`) before its
    submit task is enqueued, so that no other turn enqueues it too. True if taken."""
    return bool(Job.objects.filter(pk=job_id, next_poll_at__lte=now).update(next_poll_at=until))


def accept(job, request_id, next_poll_at):
    """The gateway took the job under `request_id`: it is followed from now on (unless its
    webhook brought the request_id home first)."""
    now = timezone.now()
    Job.objects.filter(pk=job.pk, request_id__isnull=True).update(
        request_id=request_id, submission=Job.Submission.ACCEPTED, submitted_at=now, next_poll_at=next_poll_at,
        error="", updated_at=now,
    )


def adopt_request_id(job, request_id):
    """The submit's answer was lost, but the gateway took the job: its callback brings the
    request_id home, so the job is followed (and charged) normally, polled at once.
    True if adopted."""
    now = timezone.now()
    lost = Job.objects.filter(pk=job.pk, request_id__isnull=True, submission=Job.Submission.SUBMITTING)
    try:
        with transaction.atomic():  # a savepoint: the caller's transaction survives a refusal
            return bool(lost.update(request_id=request_id, submission=Job.Submission.ACCEPTED, submitted_at=now,
                                    next_poll_at=now, updated_at=now))
    except IntegrityError:  # another job already has this request_id: not this one's
        return False


# -- polling ------------------------------------------------------------------------


def claim_polls(limit, hold_for):
    """Claim up to `limit` jobs due for a poll, in one short transaction, by moving their
    next poll `hold_for` on: no other poller takes them meanwhile. On PostgreSQL, rows
    another poller is claiming are skipped rather than waited for; SQLite runs its
    (IMMEDIATE) transactions one at a time. Returns the claimed jobs."""
    now = timezone.now()
    with transaction.atomic():
        due = Job.objects.due_for_poll(now).order_by("next_poll_at").select_for_update(skip_locked=True)
        ids = list(due.values_list("pk", flat=True)[:limit])
        Job.objects.filter(pk__in=ids).update(next_poll_at=now + hold_for)
    return list(Job.objects.filter(pk__in=ids).order_by("pk"))


def release_polls(jobs):
    """Claims a poller did not use go back: those still in flight are due now."""
    Job.objects.filter(pk__in=[job.pk for job in jobs]).in_flight().update(next_poll_at=timezone.now())


def schedule_poll(job, next_poll_at):
    """The status endpoint answered: the failures count starts again, and a job still in
    flight is polled next at `next_poll_at`."""
    Job.objects.filter(pk=job.pk).in_flight().update(poll_failures=0, next_poll_at=next_poll_at)


def count_poll_failure(job, next_poll_at):
    Job.objects.filter(pk=job.pk).update(poll_failures=job.poll_failures + 1, next_poll_at=next_poll_at)


# -- the client's callback (studio/api/tasks.py) ------------------------------------


def count_callback_delivery(job, owed, most):
    """Count one delivery against the callback owed since `owed`; False when it is no
    longer owed or has had `most` deliveries already."""
    return bool(Job.objects.filter(pk=job.pk, client_callback_owed_since=owed, client_callback_attempts__lt=most)
                .update(client_callback_attempts=F("client_callback_attempts") + 1))


def settle_callback(job, owed):
    """The callback owed since `owed` is done with (delivered, refused or given up),
    unless a later status change owes another, which stays. True if it was still owed."""
    return bool(Job.objects.filter(pk=job.pk, client_callback_owed_since=owed).update(client_callback_owed_since=None))


# -- outputs ------------------------------------------------------------------------


def count_fetch_attempt(job):
    Job.objects.filter(pk=job.pk).update(fetch_attempts=F("fetch_attempts") + 1)


def record_fetch(job, error=""):
    """The fetch is over: the outputs are in storage, or `error` says why they are not."""
    changes = {"output_error": error[:300]} if error else {"outputs_fetched": True}
    Job.objects.filter(pk=job.pk).update(**changes, updated_at=timezone.now())

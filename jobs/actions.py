"""Starting a paid job: the single entry point for the HTML views and the APIs.

One transaction validates, places the hold, creates the job in QUEUED and enqueues its
submit task. No network call happens here; the worker talks to the gateway.
"""

import secrets

from django.db import transaction

from jobs.contract import MAX_SEED
from jobs.models import Job, Status
from jobs.queue import enqueue
from studio.accounts.access import require_runner
from studio.activity.models import Event, record
from studio.billing import money
from studio.billing.models import Wallet
from studio.library.models import Asset


def start_job(membership, model, params, *, source_asset=None, **job_fields):
    """Hold the price and queue the job. Raises PermissionDenied for a role that cannot
    run jobs and money.InsufficientFunds (booking nothing) when the wallet is short."""
    require_runner(membership)
    with transaction.atomic():
        job = Job.objects.create(
            team=membership.team, created_by=membership.user, model=model, params=params,
            source_asset=source_asset, price=money.price_of(model), **job_fields,
        )
        enqueue("jobs.tasks.submit_job", job.pk)
        _record_start(job)
        # Last: the hold locks the team's wallet until the commit, which concurrent
        # submissions for the team wait on.
        money.hold(job, membership.user)
    return job


def _record_start(job):
    if job.model == Job.Model.FIBO:
        record(job.team, job.created_by, Event.Verb.GENERATED, f"“{job.params['prompt'][:120]}”", job=str(job.code))
    else:
        record(job.team, job.created_by, Event.Verb.REMOVED_BACKGROUND, "", job=str(job.code))


def start_fibo(membership, params, **job_fields):
    return start_job(membership, Job.Model.FIBO, params, **job_fields)


MAX_VARIATIONS = 8


def start_variations(membership, source, count):
    """`count` new FIBO jobs with the source's prompt and parameters and fresh random
    seeds, all or none: the whole batch is held in one transaction."""
    if not 1 <= count <= MAX_VARIATIONS:
        raise ValueError(f"Ask for 1 to {MAX_VARIATIONS} variations.")
    params = {key: value for key, value in source.params.items() if key != "seed"}
    total = money.price_of(Job.Model.FIBO, count)
    try:
        with transaction.atomic():
            return [start_fibo(membership, {**params, "seed": secrets.randbelow(MAX_SEED + 1)}) for _ in range(count)]
    except money.InsufficientFunds:
        # Say what the whole batch costs against what the wallet really has (the
        # partial holds were rolled back).
        raise money.InsufficientFunds(total, Wallet.objects.get(team=membership.team).available) from None
    except money.CapExceeded as exc:
        left = exc.cap - money.spent_this_month(membership.team_id, membership.user_id)
        raise money.CapExceeded(total, exc.cap, max(left, 0)) from None


class NotRetryable(Exception):
    def __init__(self, message, retry=None):
        super().__init__(message)
        self.retry = retry


def retry_job(membership, job):
    """Run an ERROR job again as a new job with the same input, held and charged like any
    other (the ERROR itself was never charged). Once per job, so a resent request cannot
    pay twice: retrying again raises NotRetryable carrying the first retry."""
    require_runner(membership)
    if job.status != Status.ERROR:
        raise NotRetryable("Only a job that ended in ERROR can be retried.")
    with transaction.atomic():
        Job.objects.select_for_update().filter(pk=job.pk).first()
        existing = Job.objects.filter(retry_of=job).first()
        if existing is not None:
            raise NotRetryable("This job has already been retried.", existing)
        if "source" in job.params and job.source_asset_id is None:
            raise NotRetryable("The input image of this job is no longer in the library.")
        return start_job(membership, job.model, job.params, source_asset=job.source_asset, retry_of=job)


def start_rmbg_from_url(membership, image_url, **job_fields):
    return start_job(membership, Job.Model.RMBG, {"image_url": image_url}, **job_fields)


def start_rmbg_from_asset(membership, asset):
    return start_job(membership, Job.Model.RMBG, {"source": str(asset.code)}, source_asset=asset)


def start_rmbg_from_upload(membership, data):
    """Store the upload as an input asset and remove its background. The asset and the
    job commit together; if the job is refused, the stored files are removed."""
    require_runner(membership)
    asset = Asset.from_bytes(data, team=membership.team, role=Asset.Role.INPUT, created_by=membership.user)
    try:
        with transaction.atomic():
            asset.save()
            return start_rmbg_from_asset(membership, asset)
    except Exception:
        asset.file.delete(save=False)
        asset.thumbnail.delete(save=False)
        raise

"""Starting a paid job: the single entry point for the HTML views and the APIs.

One transaction validates, places the hold, creates the job in QUEUED and enqueues its
submit task. No network call happens here; the worker talks to the gateway.
"""

from django.db import transaction

from jobs.models import Job
from jobs.queue import enqueue
from studio.accounts.access import require_runner
from studio.billing import money
from studio.library.models import Asset


def start_job(membership, model, params, *, source_asset=None):
    """Hold the price and queue the job. Raises PermissionDenied for a role that cannot
    run jobs and money.InsufficientFunds (booking nothing) when the wallet is short."""
    require_runner(membership)
    with transaction.atomic():
        job = Job.objects.create(
            team=membership.team, created_by=membership.user, model=model, params=params,
            source_asset=source_asset, price=money.price_of(model),
        )
        money.hold(job, membership.user)
        enqueue("jobs.tasks.submit_job", job.pk)
    return job


def start_fibo(membership, params):
    return start_job(membership, Job.Model.FIBO, params)


def start_rmbg_from_url(membership, image_url):
    return start_job(membership, Job.Model.RMBG, {"image_url": image_url})


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

"""Reaching a job: the studio's pages and the native API alike go through here, and
every lookup starts from the request's team, so another team's job is a 404 (or, for a
link followed to one of the user's other teams, a switch there: studio.accounts.access)."""

from jobs.models import Job
from studio.accounts.access import get_for_member


def get_job_for_member(request, code):
    """The current team's job, with what its card shows."""
    return get_for_member(request, Job.objects.with_card_data(), code=code)

"""Reaching a job: the studio's pages and the native API alike go through here, and
every lookup starts from the request's team, so another team's job is a 404."""

from django.shortcuts import get_object_or_404

from jobs.models import Job


def get_job_for_member(request, code):
    """The current team's job, with what its card shows."""
    return get_object_or_404(Job.objects.with_card_data(), code=code, team=request.team)

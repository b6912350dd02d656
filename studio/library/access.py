"""Reaching the team's images in the library: the pages and the native API alike go
through here, and every lookup starts from the request's team, so another team's image
is a 404."""

from django.shortcuts import get_object_or_404

from studio.library.models import Asset
from studio.library.queries import library_assets


def get_asset_for_member(request, code):
    """The current team's asset (an output or an input), for the media views and any
    action that takes an image of the team."""
    return get_object_or_404(Asset, code=code, team=request.team)


def get_library_asset(request, code):
    """The current team's asset with its job, its author and the viewer's star."""
    return get_object_or_404(library_assets(request.team, request.user, {}), code=code)

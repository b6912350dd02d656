"""Reaching the team's images in the library: the pages and the native API alike go
through here, and every lookup starts from the request's team, so another team's image
is a 404 (or, for a link followed to one of the user's other teams, a switch there:
studio.accounts.access)."""

from studio.accounts.access import get_for_member
from studio.library.models import Asset
from studio.library.queries import library_assets


def get_asset_for_member(request, code):
    """The current team's asset (an output or an input), for the media views and any
    action that takes an image of the team."""
    return get_for_member(request, Asset.objects.all(), code=code)


def get_library_asset(request, code):
    """The current team's asset with its job, its author and the viewer's star."""
    return get_for_member(request, library_assets(request.team, request.user, {}), code=code)

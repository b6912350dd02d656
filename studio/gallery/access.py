"""Reaching a team's galleries, their items and their share links: the pages and the
native API alike go through here. Lookups start from the request's team, so another
team's gallery is a 404 (or, for a link followed to one of the user's other teams, a
switch there: studio.accounts.access); members, admins and owners curate galleries,
viewers only browse them (403)."""

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404
from django.urls import reverse

from studio.accounts.access import MANAGING_ROLES, get_for_member


def can_edit_galleries(membership):
    """The same roles that run jobs curate galleries."""
    return membership.can_run_jobs


def can_delete_gallery(membership, gallery):
    return can_edit_galleries(membership) and (
        membership.role in MANAGING_ROLES or gallery.created_by_id == membership.user_id)


def require_gallery_editor(membership):
    if not can_edit_galleries(membership):
        raise PermissionDenied("Viewers can browse galleries but not change them.")


def get_gallery_for_member(request, code):
    return get_for_member(request, request.team.galleries.select_related("created_by"), code=code)


def get_gallery_for_editor(request, code):
    gallery = get_gallery_for_member(request, code)
    require_gallery_editor(request.membership)
    return gallery


def get_item_for_editor(request, code, asset_code):
    gallery = get_gallery_for_editor(request, code)
    return get_object_or_404(gallery.items.select_related("asset", "gallery"), asset__code=asset_code)


def get_link_for_editor(request, code, link_code):
    gallery = get_gallery_for_editor(request, code)
    return get_object_or_404(gallery.share_links.select_related("gallery"), code=link_code)


def share_url(token):
    """The public page a share link's token opens, for whoever holds it."""
    return settings.PUBLIC_BASE_URL + reverse("share", args=[token])

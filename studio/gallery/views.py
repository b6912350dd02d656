"""Galleries: a team's chosen results in order, and the links that share one with anyone.

Members, admins and owners curate galleries; viewers browse them. Every member view
starts from request.team, so another team's gallery or image is a 404. The public pages
under /s/<token>/ know nothing but the token: an unknown, revoked or expired one is the
same 404, and they serve only the images of that one gallery.
"""

import datetime
import uuid

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import content_disposition_header, url_has_allowed_host_and_scheme
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_http_methods, require_POST, require_safe

from studio.accounts.access import member_required
from studio.gallery.access import (can_delete_gallery, can_edit_galleries, get_gallery_for_editor,
                                   get_gallery_for_member, get_item_for_editor, get_link_for_editor,
                                   require_gallery_editor, share_url)
from studio.gallery.models import Gallery, ShareLink
from studio.gallery.zips import gallery_zip
from studio.library.access import get_asset_for_member
from studio.library.media import download_name, serve_file
from studio.library.models import Asset

RECENT_RESULTS_SHOWN = 8
MOVES = {"up": -1, "down": 1}


class GalleryForm(forms.ModelForm):
    class Meta:
        model = Gallery
        fields = ["title", "description"]
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}


class ShareLinkForm(forms.Form):
    hide_recipe = forms.BooleanField(required=False, label="Hide prompts and parameters")
    expires_on = forms.DateField(
        required=False, label="Expires on", input_formats=["%Y-%m-%d"],
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        error_messages={"invalid": "Enter the date as YYYY-MM-DD."},
    )
    expires_in_days = forms.IntegerField(required=False, min_value=1, max_value=365, label="or after (days)")

    def clean(self):
        data = super().clean()
        if data.get("expires_on") and data.get("expires_in_days"):
            raise forms.ValidationError("Choose an expiry date or a number of days, not both.")
        if data.get("expires_on") and data["expires_on"] < timezone.localdate():
            self.add_error("expires_on", "This day has passed.")
        return data

    def expires_at(self):
        """None for a link that never expires; a date lasts to the end of that day."""
        day, days = self.cleaned_data["expires_on"], self.cleaned_data["expires_in_days"]
        if days:
            return timezone.now() + datetime.timedelta(days=days)
        if day:
            return timezone.make_aware(datetime.datetime.combine(day + datetime.timedelta(days=1), datetime.time.min))
        return None


# The public pages' lookups: a token, and nothing else.

def get_active_link(token):
    """The live link for a token; unknown, revoked and expired are the same 404."""
    link = ShareLink.find_active(token)
    if link is None:
        raise Http404
    return link


def get_shared_asset(link, code):
    return get_object_or_404(Asset, code=code, gallery_items__gallery=link.gallery_id)


# The list of galleries.

def _list_context(request, form=None):
    return {
        "galleries": request.team.galleries.with_listing().order_by("-updated_at"),
        "form": form or GalleryForm(),
        "can_edit": can_edit_galleries(request.membership),
    }


@require_GET
@member_required
def galleries(request):
    return render(request, "gallery/galleries.html", _list_context(request))


@require_POST
@member_required
def create_gallery(request):
    require_gallery_editor(request.membership)
    form = GalleryForm(request.POST)
    if not form.is_valid():
        return render(request, "gallery/galleries.html", _list_context(request, form), status=400)
    form.instance.team, form.instance.created_by = request.team, request.user
    gallery = form.save()
    messages.success(request, f"Gallery “{gallery.title}” created.")
    return redirect("gallery", gallery.code)


# One gallery, for members.

def _gallery_context(request, gallery, **extra):
    items = list(gallery.items.select_related("asset", "asset__job"))
    can_edit = can_edit_galleries(request.membership)
    recent = []
    if can_edit:
        recent = (request.team.assets.filter(role=Asset.Role.OUTPUT).exclude(gallery_items__gallery=gallery)
                  .select_related("job").order_by("-created_at")[:RECENT_RESULTS_SHOWN])
    return {
        "gallery": gallery,
        "items": items,
        "recent": recent,
        "links": gallery.share_links.select_related("created_by").order_by("-created_at"),
        "can_edit": can_edit,
        "can_delete": can_delete_gallery(request.membership, gallery),
        "form": extra.pop("form", None) or GalleryForm(instance=gallery),
        "link_form": extra.pop("link_form", None) or ShareLinkForm(),
        **extra,
    }


@require_GET
@member_required
def gallery(request, code):
    gallery = get_gallery_for_member(request, code)
    return render(request, "gallery/gallery.html", _gallery_context(request, gallery))


@require_POST
@member_required
def edit_gallery(request, code):
    gallery = get_gallery_for_editor(request, code)
    form = GalleryForm(request.POST, instance=gallery)
    if not form.is_valid():
        gallery.refresh_from_db()
        return render(request, "gallery/gallery.html", _gallery_context(request, gallery, form=form), status=400)
    form.save()
    messages.success(request, "Saved.")
    return redirect("gallery", gallery.code)


@require_http_methods(["GET", "POST"])
@member_required
def delete_gallery(request, code):
    """A page that asks first; the POST deletes the gallery and its share links, never
    the images themselves."""
    gallery = get_gallery_for_editor(request, code)
    if not can_delete_gallery(request.membership, gallery):
        raise PermissionDenied("Only the team's owners and admins, or whoever made it, can delete a gallery.")
    if request.method == "GET":
        return render(request, "gallery/delete.html", {"gallery": gallery, "item_count": gallery.items.count()})
    gallery.delete()
    messages.success(request, f"Gallery “{gallery.title}” deleted.")
    return redirect("galleries")


# Items.

@require_POST
@member_required
def add_item(request, code):
    """Add one of the team's images. Also posted by plain forms on other pages, so it
    answers with a message and a redirect back to where the form was."""
    gallery = get_gallery_for_editor(request, code)
    asset = get_asset_for_member(request, _uuid_or_404(request.POST.get("asset")))
    if gallery.add(asset, request.user):
        messages.success(request, f"Added to “{gallery.title}”.")
    else:
        messages.info(request, f"This image is already in “{gallery.title}”.")
    back = request.headers.get("Referer", "")
    if url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return redirect(back)
    return redirect("gallery", gallery.code)


def _uuid_or_404(value):
    try:
        return uuid.UUID(value or "")
    except ValueError:
        raise Http404 from None


def _items_changed(request, gallery, message=None):
    """htmx swaps the list of items; a plain form goes back to the page."""
    if request.htmx:
        return render(request, "gallery/gallery.html#items", _gallery_context(request, gallery))
    if message:
        messages.success(request, message)
    return redirect("gallery", gallery.code)


@require_POST
@member_required
def remove_item(request, code, asset):
    item = get_item_for_editor(request, code, asset)
    item.gallery.remove(item.asset)
    return _items_changed(request, item.gallery, "Removed from the gallery (the image stays in the library).")


@require_POST
@member_required
def move_item(request, code, asset):
    item = get_item_for_editor(request, code, asset)
    offset = MOVES.get(request.POST.get("direction"))
    if offset is None:
        return HttpResponseBadRequest("Move up or down.")
    item.gallery.move(item.asset, offset)
    return _items_changed(request, item.gallery)


@require_POST
@member_required
def set_cover(request, code):
    gallery = get_gallery_for_editor(request, code)
    item = get_object_or_404(gallery.items.select_related("asset"), asset__code=_uuid_or_404(request.POST.get("asset")))
    gallery.set_cover(item.asset)
    return _items_changed(request, gallery, "Cover chosen.")


# Share links, managed on the gallery page.

def _links_changed(request, gallery, status=200, **extra):
    if request.htmx:
        template = "gallery/gallery.html#share-links"
        status = 200  # htmx swaps only 2xx answers; the form errors are in the partial
    else:
        template = "gallery/gallery.html"
    response = render(request, template, _gallery_context(request, gallery, **extra), status=status)
    response["Cache-Control"] = "private, no-store"  # it may carry a new link's one-time URL
    return response


@require_POST
@member_required
def create_link(request, code):
    """Make a link and show its URL this once; only the token's hash is kept. The page
    is rendered, not redirected to, so the URL never lands in the session or a cookie."""
    gallery = get_gallery_for_editor(request, code)
    form = ShareLinkForm(request.POST)
    if not form.is_valid():
        return _links_changed(request, gallery, status=400, link_form=form)
    link, token = ShareLink.create(gallery, request.user, hide_recipe=form.cleaned_data["hide_recipe"],
                                   expires_at=form.expires_at())
    return _links_changed(request, gallery, new_link=link, new_link_url=share_url(token))


@require_POST
@member_required
def revoke_link(request, code, link):
    link = get_link_for_editor(request, code, link)
    link.revoke(request.user)
    if request.htmx:
        return _links_changed(request, link.gallery)
    messages.success(request, "The link is revoked: it stopped working at once.")
    return redirect("gallery", link.gallery.code)


# The public pages of a share link.

@require_safe
def share(request, token):
    link = get_active_link(token)
    if request.method == "GET":  # link previewers may knock with HEAD first
        link.count_view()
    gallery = link.gallery
    items = list(gallery.items.select_related("asset", "asset__job"))
    # The cover, found among the items (only they are served through the link), else the first.
    preview = next((item.asset for item in items if item.asset_id == gallery.cover_id), items[0].asset if items else None)
    response = render(request, "gallery/share.html", {
        "link": link, "gallery": gallery, "items": items, "token": token,
        "page_url": share_url(token),
        "preview_url": preview and settings.PUBLIC_BASE_URL + reverse("share_asset", args=[token, preview.code]),
    })
    # The token is the URL: keep it out of search engines, Referer headers and caches.
    response["X-Robots-Tag"] = "noindex"
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "private, no-store"
    return response


@require_safe
def share_asset(request, token, asset):
    asset = get_shared_asset(get_active_link(token), asset)
    return serve_file(request, asset.file, asset.media_type, download_name(request, asset))


@require_safe
def share_thumbnail(request, token, asset):
    asset = get_shared_asset(get_active_link(token), asset)
    return serve_file(request, asset.thumbnail, "image/webp")


@require_safe
def share_zip(request, token):
    link = get_active_link(token)
    stream = gallery_zip([item.asset for item in link.gallery.items.select_related("asset")])
    response = StreamingHttpResponse(stream, content_type="application/zip")
    response["Content-Length"] = len(stream)
    response["Content-Disposition"] = content_disposition_header(True, f"{slugify(link.gallery.title) or 'gallery'}.zip")
    response["X-Robots-Tag"] = "noindex"
    return response

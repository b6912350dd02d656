"""Serving images. Media is private: members fetch it through access-checked views, and
the gateway (which must fetch RMBG inputs) gets a signed URL that expires."""

from django.conf import settings
from django.core import signing
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views.decorators.http import require_GET

from studio.accounts.access import member_required
from studio.library.models import Asset

SIGNED_MEDIA_MAX_AGE = 60 * 60  # long enough for the gateway to fetch an RMBG input
_signer = signing.TimestampSigner(salt="studio.library.media")


def signed_media_url(asset):
    """An absolute URL that serves the asset's full image to whoever holds it, for an hour:
    how the gateway, which has no studio login, fetches an RMBG input."""
    token = _signer.sign(str(asset.code))
    return settings.PUBLIC_BASE_URL + reverse("signed_media", args=[token])


def get_asset_for_member(request, code):
    return get_object_or_404(Asset, code=code, team=request.team)


def serve_file(file, media_type, download_name=None):
    response = FileResponse(file.open("rb"), content_type=media_type,
                            as_attachment=bool(download_name), filename=download_name or "")
    response["Cache-Control"] = "private, max-age=3600"
    response["X-Content-Type-Options"] = "nosniff"
    return response


@require_GET
@member_required
def asset_file(request, code):
    asset = get_asset_for_member(request, code)
    download = request.GET.get("download") == "1"
    name = f"bria-{asset.code}.{asset.file.name.rsplit('.', 1)[-1]}" if download else None
    return serve_file(asset.file, asset.media_type, name)


@require_GET
@member_required
def asset_thumbnail(request, code):
    asset = get_asset_for_member(request, code)
    return serve_file(asset.thumbnail, "image/webp")


@require_GET
def signed_media(request, token):
    try:
        code = _signer.unsign(token, max_age=SIGNED_MEDIA_MAX_AGE)
    except signing.BadSignature:
        raise Http404("This link is invalid or has expired.") from None
    asset = get_object_or_404(Asset, code=code)
    return serve_file(asset.file, asset.media_type)

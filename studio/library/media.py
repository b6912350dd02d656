"""Serving images. Media is private: members fetch it through access-checked views, and
the gateway (which must fetch RMBG inputs) gets a signed URL that expires.

From the local disk the views stream the bytes. From a bucket (AWS_STORAGE_BUCKET_NAME)
they answer, after the same access check, with a redirect to a presigned URL that
expires (AWS_QUERYSTRING_EXPIRE), so the store sends the bytes and no web worker waits
on them; the URL carries the content type, and a download's file name."""

from django.conf import settings
from django.core import signing
from django.core.files.storage import FileSystemStorage
from django.http import FileResponse, Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET

from studio.accounts.access import member_required
from studio.library.access import get_asset_for_member
from studio.library.models import Asset

SIGNED_MEDIA_MAX_AGE = 60 * 60  # long enough for the gateway to fetch an RMBG input
# What browsers may keep an image for, from the disk or from the bucket's presigned URL.
IMAGE_CACHE_CONTROL = "private, max-age=3600"
_signer = signing.TimestampSigner(salt="studio.library.media")


def signed_media_url(asset):
    """An absolute URL that serves the asset's full image to whoever holds it, for an hour:
    how the gateway, which has no studio login, fetches an RMBG input. With a bucket it is
    the presigned URL itself: the gateway then needs neither to follow a redirect nor to
    reach the studio, only the bucket."""
    if in_bucket(asset.file):
        return presigned_url(asset.file, asset.media_type, expire=SIGNED_MEDIA_MAX_AGE)
    token = _signer.sign(str(asset.code))
    return settings.PUBLIC_BASE_URL + reverse("signed_media", args=[token])


def in_bucket(file):
    """The studio has two kinds of storage: the local disk, and an S3 bucket."""
    return not isinstance(file.storage, FileSystemStorage)


def presigned_url(file, media_type, filename=None, expire=None, method="GET"):
    """A URL of the bucket that serves `file` as `media_type` (as an attachment named
    `filename`, if given) until `expire` seconds (AWS_QUERYSTRING_EXPIRE) from now.
    Signed locally: no request to the store."""
    parameters = {"ResponseContentType": media_type, "ResponseCacheControl": IMAGE_CACHE_CONTROL}
    if filename:
        parameters["ResponseContentDisposition"] = content_disposition_header(True, filename)
    return file.storage.url(file.name, parameters=parameters, expire=expire, http_method=method)


def serve_file(request, file, media_type, filename=None):
    """The image (as an attachment named `filename`, if given), to a request that has
    passed its access check."""
    if in_bucket(file):
        # HEAD is signed as HEAD: a URL signed for GET refuses it.
        response = HttpResponseRedirect(presigned_url(file, media_type, filename, method=request.method))
        # The browser may reuse the redirect, and the URL in it, for half of the URL's life.
        response["Cache-Control"] = f"private, max-age={settings.AWS_QUERYSTRING_EXPIRE // 2}"
        return response
    response = FileResponse(file.open("rb"), content_type=media_type,
                            as_attachment=bool(filename), filename=filename or "")
    response["Cache-Control"] = IMAGE_CACHE_CONTROL
    response["X-Content-Type-Options"] = "nosniff"
    return response


def download_name(request, asset):
    """`bria-<code>.<ext>` when the link asks for a download (?download=1), else None."""
    if request.GET.get("download") != "1":
        return None
    return f"bria-{asset.code}.{asset.file.name.rsplit('.', 1)[-1]}"


@require_GET
@member_required
def asset_file(request, code):
    asset = get_asset_for_member(request, code)
    return serve_file(request, asset.file, asset.media_type, download_name(request, asset))


@require_GET
@member_required
def asset_thumbnail(request, code):
    asset = get_asset_for_member(request, code)
    return serve_file(request, asset.thumbnail, "image/webp")


@require_GET
def signed_media(request, token):
    try:
        code = _signer.unsign(token, max_age=SIGNED_MEDIA_MAX_AGE)
    except signing.BadSignature:
        raise Http404("This link is invalid or has expired.") from None
    asset = get_object_or_404(Asset, code=code, team__archived_at__isnull=True)
    return serve_file(request, asset.file, asset.media_type)

"""Images in the studio's own storage: every job output and every uploaded RMBG input."""

import hashlib
import io
import uuid

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import models
from PIL import Image, UnidentifiedImageError

THUMBNAIL_SIZE = (384, 384)


# What writing to the media storage raises when the storage, not the image, is at fault:
# the disk (full, unwritable) or the bucket (unreachable, refusing). Callers treat it as
# transient and try again later.
STORAGE_ERRORS = (OSError, BotoCoreError, ClientError)


class BadImage(ValueError):
    """Raised for bytes that are not an image we accept; the message is for the user."""


def _asset_path(asset, filename):
    return f"teams/{asset.team.code}/{asset.code}/{filename}"


class Asset(models.Model):
    class Role(models.TextChoices):
        INPUT = "input", "Input"
        OUTPUT = "output", "Output"

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    team = models.ForeignKey("accounts.Team", models.CASCADE, related_name="assets")
    job = models.ForeignKey("jobs.Job", models.CASCADE, null=True, blank=True, related_name="assets")
    role = models.CharField(max_length=6, choices=Role.choices)
    # Position among the job's outputs (the gateway returns a list of media URLs).
    index = models.PositiveSmallIntegerField(default=0)
    file = models.FileField(upload_to=_asset_path, max_length=300)
    thumbnail = models.FileField(upload_to=_asset_path, max_length=300)
    media_type = models.CharField(max_length=50)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    size_bytes = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["job", "role", "index"], condition=models.Q(job__isnull=False), name="one_asset_per_job_slot"
            )
        ]
        indexes = [models.Index(fields=["team", "-created_at"])]

    def __str__(self):
        return f"{self.role} {self.code}"

    @classmethod
    def from_bytes(cls, data, *, team, role, job=None, index=0, created_by=None):
        """Check the bytes really are an image, make its thumbnail and build the (unsaved)
        asset. Files are written to storage when the asset is saved."""
        image = open_image(data)
        asset = cls(
            team=team, job=job, role=role, index=index, created_by=created_by,
            media_type=Image.MIME.get(image.format, "application/octet-stream"),
            width=image.width, height=image.height,
            size_bytes=len(data), sha256=hashlib.sha256(data).hexdigest(),
        )
        extension = (image.format or "bin").lower().replace("jpeg", "jpg")
        thumbnail = make_thumbnail(image)  # before anything is written: it may refuse the image
        asset.file.save(f"image.{extension}", ContentFile(data), save=False)
        asset.thumbnail.save("thumb.webp", ContentFile(thumbnail), save=False)
        return asset


def open_image(data):
    """Decode enough of `data` to trust it; refuse what is not an image, truncated, or a
    decompression bomb."""
    if len(data) > settings.UPLOAD_MAX_BYTES:
        raise BadImage(f"The image is larger than {settings.UPLOAD_MAX_BYTES // (1024 * 1024)} MB.")
    try:
        image = Image.open(io.BytesIO(data))
        if image.width * image.height > settings.UPLOAD_MAX_PIXELS:
            raise BadImage("The image has too many pixels.")
        image.load()
    except BadImage:
        raise
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, ValueError):
        raise BadImage("The file is not a readable PNG, JPEG or WebP image.") from None
    if image.format not in ("PNG", "JPEG", "WEBP"):
        raise BadImage("Only PNG, JPEG and WebP images are accepted.")
    return image


def make_thumbnail(image):
    thumb = image.copy()
    if thumb.mode.startswith(("I", "F")):
        # 16-bit and float greys: scaled down to 8 bits (resizing and RGBA refuse them).
        thumb = thumb.convert("I").point(lambda value: value / 256).convert("L")
    try:
        # Every output passes through here before its job is COMPLETED. Halving first
        # by box averages (reducing_gap=1) and WebP's faster method 2 take a 1024 px
        # image's thumbnail from about 21 to 9 ms, for files 4% larger that look the same
        # at 384 px.
        thumb.thumbnail(THUMBNAIL_SIZE, reducing_gap=1.0)
        if thumb.mode not in ("RGB", "RGBA"):
            thumb = thumb.convert("RGBA")
        out = io.BytesIO()
        thumb.save(out, "WEBP", quality=82, method=2)
    except (ValueError, OSError):
        raise BadImage("The image's colour format is not one the studio can use.") from None
    return out.getvalue()


class Star(models.Model):
    """A member's mark on a result, to find it again."""

    asset = models.ForeignKey(Asset, models.CASCADE, related_name="stars")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["asset", "user"], name="one_star_per_user")]

    @classmethod
    def set(cls, asset, user, starred):
        """Star or unstar: a state, not a flip, so a double click or a resent request
        leaves what was asked for."""
        if starred:
            cls.objects.get_or_create(asset=asset, user=user)
        else:
            cls.objects.filter(asset=asset, user=user).delete()

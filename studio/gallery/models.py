"""Galleries of a team's results, and the links that share them with anyone."""

import hashlib
import secrets
import uuid

from django.conf import settings
from django.db import models
from django.db.models import F
from django.utils import timezone


class Gallery(models.Model):
    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    team = models.ForeignKey("accounts.Team", models.CASCADE, related_name="galleries")
    title = models.CharField(max_length=120)
    description = models.TextField(blank=True, max_length=2000)
    cover = models.ForeignKey("library.Asset", models.SET_NULL, null=True, blank=True, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "galleries"
        indexes = [models.Index(fields=["team", "-updated_at"])]

    def __str__(self):
        return self.title


class GalleryItem(models.Model):
    gallery = models.ForeignKey(Gallery, models.CASCADE, related_name="items")
    asset = models.ForeignKey("library.Asset", models.CASCADE, related_name="gallery_items")
    position = models.PositiveIntegerField(default=0)
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, related_name="+")
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["position", "id"]
        constraints = [models.UniqueConstraint(fields=["gallery", "asset"], name="asset_once_per_gallery")]


def hash_share_token(token):
    return hashlib.sha256(token.encode()).hexdigest()


class ShareLinkQuerySet(models.QuerySet):
    def active(self, now=None):
        now = now or timezone.now()
        return self.filter(revoked_at__isnull=True).filter(models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now))


class ShareLink(models.Model):
    """A public, read-only view of one gallery. The token (256 random bits) is shown
    once, when the link is made; only its hash is stored."""

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    gallery = models.ForeignKey(Gallery, models.CASCADE, related_name="share_links")
    token_hash = models.CharField(max_length=64, unique=True)
    hide_recipe = models.BooleanField(default=False, help_text="Hide prompts and parameters on the shared page.")
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    views = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ShareLinkQuerySet.as_manager()

    def __str__(self):
        return f"share link {self.code} of {self.gallery}"

    @classmethod
    def create(cls, gallery, user, *, hide_recipe=False, expires_at=None):
        """Make a link; returns (link, token). The token cannot be recovered later."""
        token = secrets.token_urlsafe(32)
        link = cls.objects.create(gallery=gallery, token_hash=hash_share_token(token), hide_recipe=hide_recipe,
                                  expires_at=expires_at, created_by=user)
        return link, token

    @classmethod
    def find_active(cls, token):
        """The live link for `token`, or None (unknown, revoked or expired alike). The
        lookup is by hash, so the database never compares the secret itself."""
        link = cls.objects.active().select_related("gallery", "gallery__team").filter(
            token_hash=hash_share_token(token)).first()
        if link is None or not secrets.compare_digest(link.token_hash, hash_share_token(token)):
            return None
        return link

    @property
    def is_active(self):
        now = timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    def count_view(self):
        ShareLink.objects.filter(pk=self.pk).update(views=F("views") + 1)

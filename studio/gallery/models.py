"""Galleries of a team's results, and the links that share them with anyone."""

import hashlib
import secrets
import uuid

from django.conf import settings
from django.db import models, transaction
from django.db.models import Count, F, Max
from django.utils import timezone

from studio.activity.models import Event, record


class GalleryQuerySet(models.QuerySet):
    def with_listing(self):
        """What the list of galleries shows, in one query: cover and item count."""
        return self.select_related("cover").annotate(item_count=Count("items"))


class Gallery(models.Model):
    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    team = models.ForeignKey("accounts.Team", models.CASCADE, related_name="galleries")
    title = models.CharField(max_length=120)
    description = models.TextField(blank=True, max_length=2000)
    cover = models.ForeignKey("library.Asset", models.SET_NULL, null=True, blank=True, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = GalleryQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "galleries"
        indexes = [models.Index(fields=["team", "-updated_at"])]

    def __str__(self):
        return self.title

    # Changes to the items go through these methods. Each one locks the gallery row first,
    # so two editors working at once cannot hand out the same position or lose a move.

    @transaction.atomic
    def add(self, asset, user):
        """Append `asset`; returns the new item, or None if it is already here. The first
        image of a gallery without a cover becomes its cover."""
        if asset.team_id != self.team_id:
            raise ValueError("An asset can only join a gallery of its own team.")
        self._lock()
        if self.items.filter(asset=asset).exists():
            return None
        last = self.items.aggregate(last=Max("position"))["last"]
        item = GalleryItem.objects.create(gallery=self, asset=asset, added_by=user,
                                          position=0 if last is None else last + 1)
        if self.cover_id is None:
            self.cover = asset
        self.touch("cover")
        return item

    @transaction.atomic
    def remove(self, asset):
        """Take `asset` out (the image itself stays in the library). A removed cover is
        replaced by the first remaining image."""
        self._lock()
        deleted, _ = self.items.filter(asset=asset).delete()
        if not deleted:
            return False
        items = self._renumber(list(self.items.select_related("asset")))
        if self.cover_id == asset.pk:
            self.cover = items[0].asset if items else None
        self.touch("cover")
        return True

    @transaction.atomic
    def move(self, asset, offset):
        """Move `asset` `offset` places (-1 up, +1 down); at either end it stays put.
        Positions are renumbered 0..n-1 on the way, so they stay contiguous."""
        self._lock()
        items = list(self.items.all())
        index = next((i for i, item in enumerate(items) if item.asset_id == asset.pk), None)
        if index is None:
            raise ValueError("The image is not in this gallery.")
        target = index + offset
        if 0 <= target < len(items):
            items[index], items[target] = items[target], items[index]
        self._renumber(items)
        self.touch()

    @transaction.atomic
    def set_cover(self, asset):
        self._lock()
        if not self.items.filter(asset=asset).exists():
            raise ValueError("The cover must be an image of the gallery.")
        self.cover = asset
        self.touch("cover")

    def touch(self, *fields):
        self.save(update_fields=["updated_at", *fields])

    def _lock(self):
        self.cover_id = Gallery.objects.select_for_update().values_list("cover_id", flat=True).get(pk=self.pk)

    @staticmethod
    def _renumber(items):
        changed = []
        for position, item in enumerate(items):
            if item.position != position:
                item.position = position
                changed.append(item)
        GalleryItem.objects.bulk_update(changed, ["position"])
        return items


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
    @transaction.atomic
    def create(cls, gallery, user, *, hide_recipe=False, expires_at=None):
        """Make a link; returns (link, token). The token cannot be recovered later."""
        token = secrets.token_urlsafe(32)
        link = cls.objects.create(gallery=gallery, token_hash=hash_share_token(token), hide_recipe=hide_recipe,
                                  expires_at=expires_at, created_by=user)
        record(gallery.team, user, Event.Verb.SHARED, f"a link to “{gallery.title}”",
               gallery=str(gallery.code), link=str(link.code))
        return link, token

    @classmethod
    def find_active(cls, token):
        """The live link for `token`, or None (unknown, revoked, expired, or of a closed
        team alike). The lookup is by hash, so the database never compares the secret
        itself."""
        link = cls.objects.active().select_related("gallery", "gallery__team").filter(
            token_hash=hash_share_token(token), gallery__team__archived_at__isnull=True).first()
        if link is None or not secrets.compare_digest(link.token_hash, hash_share_token(token)):
            return None
        return link

    @property
    def is_active(self):
        now = timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    @property
    def state(self):
        if self.revoked_at is not None:
            return "revoked"
        return "active" if self.is_active else "expired"

    def count_view(self):
        ShareLink.objects.filter(pk=self.pk).update(views=F("views") + 1)

    @transaction.atomic
    def revoke(self, actor=None):
        """Stop the link at once. Revoking twice keeps the first moment."""
        now = timezone.now()
        if ShareLink.objects.filter(pk=self.pk, revoked_at__isnull=True).update(revoked_at=now):
            self.revoked_at = now
            record(self.gallery.team, actor, Event.Verb.SHARE_REVOKED, f"a link to “{self.gallery.title}”",
                   gallery=str(self.gallery.code), link=str(self.code))

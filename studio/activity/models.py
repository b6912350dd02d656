"""What happened in a team, and who did it: one append-only table that is both the
team's activity feed and its audit log; and the comments members leave on results."""

import uuid

from django.conf import settings
from django.db import models, transaction
from django.urls import reverse
from django.utils.text import Truncator

from studio.accounts.access import MANAGING_ROLES
from studio.appendonly import AppendOnlyModel, AppendOnlyQuerySet
from studio.billing.models import format_micros

# Data keys that hold money, in exact micro-dollars as recorded, and what their empty
# value means. People read them in dollars (the audit page and its CSV).
MONEY_KEYS = {"cap": "no cap", "threshold": "no warning"}


class Event(AppendOnlyModel):
    class Verb(models.TextChoices):
        GENERATED = "generated", "generated an image"
        REMOVED_BACKGROUND = "removed_background", "removed a background"
        TOPPED_UP = "topped_up", "topped up the wallet"
        BONUS = "bonus", "received the first top-up bonus"
        CAP_CHANGED = "cap_changed", "changed a spend cap"
        THRESHOLD_CHANGED = "threshold_changed", "changed the low-balance warning"
        TWO_FACTOR_CHANGED = "two_factor_changed", "changed the two-factor requirement"
        INVITED = "invited", "invited"
        JOINED = "joined", "joined the team"
        ROLE_CHANGED = "role_changed", "changed a role"
        REMOVED_MEMBER = "removed_member", "removed a member"
        LEFT = "left", "left the team"
        OWNERSHIP_TRANSFERRED = "ownership_transferred", "transferred ownership"
        SHARED = "shared", "shared a gallery"
        SHARE_REVOKED = "share_revoked", "revoked a share link"
        API_KEY_CREATED = "api_key_created", "created an API key"
        API_KEY_REVOKED = "api_key_revoked", "revoked an API key"
        COMMENTED = "commented", "commented on a result"

    team = models.ForeignKey("accounts.Team", models.CASCADE, related_name="events")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+")
    verb = models.CharField(max_length=32, choices=Verb.choices)
    # What it was about, in words that stay true after the object is gone.
    summary = models.CharField(max_length=300, blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["team", "-created_at"])]

    def __str__(self):
        return f"{self.actor} {self.get_verb_display()} in {self.team}"

    @property
    def link(self):
        """The page of what the event is about: its job, else its image; "" for none.
        It may have been deleted since: the page then says so with its 404."""
        if self.data.get("job"):
            return reverse("job_card", args=[self.data["job"]])
        if self.data.get("asset"):
            return reverse("asset_detail", args=[self.data["asset"]])
        return ""

    @property
    def details(self):
        """The data as (key, text) pairs, keys in order, for people to read."""
        return [(key, "none" if value is None else str(value)) for key, value in sorted(readable(self.data).items())]


# Verbs the audit log shows (money, membership, roles, caps, API keys, share links);
# the activity feed shows everything.
AUDITED = frozenset({
    Event.Verb.TOPPED_UP, Event.Verb.BONUS, Event.Verb.CAP_CHANGED, Event.Verb.THRESHOLD_CHANGED,
    Event.Verb.INVITED, Event.Verb.JOINED, Event.Verb.ROLE_CHANGED, Event.Verb.REMOVED_MEMBER, Event.Verb.LEFT,
    Event.Verb.OWNERSHIP_TRANSFERRED, Event.Verb.SHARED, Event.Verb.SHARE_REVOKED, Event.Verb.TWO_FACTOR_CHANGED,
    Event.Verb.API_KEY_CREATED, Event.Verb.API_KEY_REVOKED,
})


def readable(data):
    """An event's data with its money in dollars ("$50.00", "no cap"), the rest as recorded."""
    return {key: _dollars(key, value) if key in MONEY_KEYS else value for key, value in data.items()}


def _dollars(key, micros):
    return MONEY_KEYS[key] if micros is None else format_micros(micros)


def record(team, actor, verb, summary="", **data):
    """Append an event. Call it inside the transaction of the change it describes, so
    the two commit (or roll back) together."""
    return Event.objects.create(team=team, actor=actor if getattr(actor, "pk", None) else None,
                                verb=verb, summary=summary[:300], data=data)


class Comment(models.Model):
    """A member's note on one of the team's images. Unlike events, comments can be
    deleted: by their author, or by the team's owners and admins."""

    MAX_LENGTH = 2000

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    asset = models.ForeignKey("library.Asset", models.CASCADE, related_name="comments")
    # Kept when the author's account goes: the discussion still reads in order.
    author = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, related_name="+")
    body = models.TextField(max_length=MAX_LENGTH)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["asset", "created_at"])]

    def __str__(self):
        return f"{self.author} on {self.asset}: {Truncator(self.body).chars(40)}"

    @classmethod
    @transaction.atomic
    def post(cls, asset, author, body):
        """Add a comment and its event together. The event names the image, not the
        comment's words: a deleted comment must not live on in the append-only feed."""
        comment = cls.objects.create(asset=asset, author=author, body=body)
        record(asset.team, author, Event.Verb.COMMENTED, _about(asset),
               asset=str(asset.code), comment=str(comment.code))
        return comment

    def can_be_deleted_by(self, membership):
        return self.author_id == membership.user_id or membership.role in MANAGING_ROLES


def _about(asset):
    job = asset.job
    if job is not None and job.model == "fibo" and asset.role == "output":
        return f"“{Truncator(job.params.get('prompt', '')).chars(80)}”"
    return ""

"""What happened in a team, and who did it: one append-only table that is both the
team's activity feed and its audit log."""

from django.conf import settings
from django.db import models


class Event(models.Model):
    class Verb(models.TextChoices):
        GENERATED = "generated", "generated an image"
        REMOVED_BACKGROUND = "removed_background", "removed a background"
        TOPPED_UP = "topped_up", "topped up the wallet"
        BONUS = "bonus", "received the first top-up bonus"
        CAP_CHANGED = "cap_changed", "changed a spend cap"
        THRESHOLD_CHANGED = "threshold_changed", "changed the low-balance warning"
        INVITED = "invited", "invited someone"
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

    class Meta:
        indexes = [models.Index(fields=["team", "-created_at"])]

    def __str__(self):
        return f"{self.actor} {self.get_verb_display()} in {self.team}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ValueError("events are append-only")
        super().save(*args, **kwargs)


# Verbs the audit log shows (money, membership, roles, caps, API keys, share links);
# the activity feed shows everything.
AUDITED = frozenset({
    Event.Verb.TOPPED_UP, Event.Verb.BONUS, Event.Verb.CAP_CHANGED, Event.Verb.THRESHOLD_CHANGED,
    Event.Verb.INVITED, Event.Verb.JOINED, Event.Verb.ROLE_CHANGED, Event.Verb.REMOVED_MEMBER, Event.Verb.LEFT,
    Event.Verb.OWNERSHIP_TRANSFERRED, Event.Verb.SHARED, Event.Verb.SHARE_REVOKED,
    Event.Verb.API_KEY_CREATED, Event.Verb.API_KEY_REVOKED,
})


def record(team, actor, verb, summary="", **data):
    """Append an event. Call it inside the transaction of the change it describes, so
    the two commit (or roll back) together."""
    return Event.objects.create(team=team, actor=actor if getattr(actor, "pk", None) else None,
                                verb=verb, summary=summary[:300], data=data)

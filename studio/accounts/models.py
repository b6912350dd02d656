"""Teams, who is in them with which role, and the invitations that bring people in.

Every change to who is in a team, and with which role, is a method here: it locks the
team row (so two managers acting at once cannot, say, leave a team without an owner),
asks studio.accounts.roles whether the actor may act on that member (the views asked
first, to answer 403; this keeps the rule when two managers act at once), checks the rule
that must never break, changes the rows and records its event, all in one transaction.
"""

import datetime
import hashlib
import secrets
import uuid

from django.conf import settings
from django.db import models, transaction
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.text import slugify

from studio.accounts.roles import Action, Role, may_act, require
from studio.activity.models import Event, record
from studio.billing.models import format_micros

# Roles that may spend the team's money by running jobs.
RUNNING_ROLES = frozenset({Role.MEMBER, Role.ADMIN, Role.OWNER})

# What each role can do, in the words the team page and invitations use.
ROLE_DESCRIPTIONS = {
    Role.VIEWER: "Browses the library and galleries; runs nothing and spends nothing.",
    Role.MEMBER: "Runs jobs paid from the team's wallet, makes galleries and share links.",
    Role.ADMIN: "Runs jobs and manages the team's members and viewers: invites them, changes their roles, "
                "removes them, sets their spend caps, makes API keys acting as them.",
    Role.OWNER: "Manages everyone in the team (admins too) and its wallet, can hand over ownership and can delete the team.",
}

INVITATION_DAYS = 7


class TeamError(Exception):
    """A change that would break a rule of the team (its message says which)."""


class TeamHasMoney(TeamError):
    pass


class Team(models.Model):
    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    slug = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=100)
    # A banner shows, and the owners get one email, when the available balance drops
    # below this (micro-dollars); empty for no alert.
    low_balance_threshold = models.BigIntegerField(null=True, blank=True)
    # Set by an owner: members without two-factor authentication are sent to enrol
    # before they open any of the team's pages (studio/accounts/mfa.py).
    requires_2fa = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    # A "deleted" team whose ledger must stay (entries PROTECT their team): it has no
    # members left, and nobody can switch to it or join it again.
    archived_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return self.slug

    @classmethod
    @transaction.atomic
    def create_for(cls, user, name, slug=None):
        """A new team owned by `user`, with its (empty) wallet."""
        from studio.billing.models import Wallet

        team = cls.objects.create(name=name, slug=slug or cls.free_slug(name))
        Membership.objects.create(team=team, user=user, role=Role.OWNER)
        Wallet.objects.create(team=team)
        return team

    @classmethod
    def free_slug(cls, name):
        base = slugify(name)[:50] or "team"
        slug, n = base, 1
        while cls.objects.filter(slug=slug).exists():
            n += 1
            slug = f"{base}-{n}"
        return slug

    def _lock(self):
        Team.objects.select_for_update().filter(pk=self.pk).values_list("pk").get()

    def _member(self, user):
        membership = self.memberships.select_related("user").filter(user=user).first()
        if membership is None:
            raise TeamError(f"{user.get_username()} is not in this team.")
        return membership

    def acted_on(self, actor, user, action):
        """Under the team lock: `user`'s membership, if `actor` may take `action` on it
        (roles.Refused otherwise)."""
        self._lock()
        membership = self._member(user)
        require(self._member(actor), membership, action)
        return membership

    @transaction.atomic
    def invite(self, inviter, role, email="", days=INVITATION_DAYS):
        """A new invitation; returns (invitation, token). The token is the accept link's
        secret and cannot be recovered later: only its hash is stored."""
        require(self._member(inviter), role, Action.GRANT)
        token = secrets.token_urlsafe(32)
        invitation = Invitation.objects.create(
            team=self, role=role, email=email, token_hash=hash_token(token), invited_by=inviter,
            expires_at=timezone.now() + datetime.timedelta(days=days))
        record(self, inviter, Event.Verb.INVITED, f"{email or 'someone with a link'} as {invitation.get_role_display()}",
               invitation=str(invitation.code), role=role, email=email)
        return invitation, token

    @transaction.atomic
    def change_role(self, user, role, actor):
        """Who may change this member's role, to give them the new one."""
        membership = self.acted_on(actor, user, Action.CHANGE_ROLE)
        require(self._member(actor), role, Action.GRANT)
        old, membership.role = membership.role, role
        membership.save(update_fields=["role"])
        record(self, actor, Event.Verb.ROLE_CHANGED, f"{user.get_username()}: {old} → {role}",
               member=user.get_username(), old=old, new=role)
        return membership

    @transaction.atomic
    def remove_member(self, user, actor):
        membership = self.acted_on(actor, user, Action.REMOVE)
        membership.delete()
        record(self, actor, Event.Verb.REMOVED_MEMBER, f"{user.get_username()} ({membership.role})",
               member=user.get_username(), role=membership.role)

    @transaction.atomic
    def set_cap(self, user, cap, actor):
        """`user` may spend `cap` micro-dollars a calendar month from now on (None: no cap)."""
        membership = self.acted_on(actor, user, Action.SET_CAP)
        membership.monthly_cap = cap
        membership.save(update_fields=["monthly_cap"])
        record(self, actor, Event.Verb.CAP_CHANGED, f"{user.get_username()}: {cap_text(cap)}",
               member=user.get_username(), cap=cap)
        return membership

    @transaction.atomic
    def leave(self, user):
        """Anyone may leave, except the last owner: a team always has one."""
        self._lock()
        membership = self._member(user)
        if membership.role == Role.OWNER and not self.memberships.filter(role=Role.OWNER).exclude(pk=membership.pk).exists():
            raise TeamError("Transfer ownership to another member before leaving: the team needs an owner.")
        membership.delete()
        record(self, user, Event.Verb.LEFT, user.get_username(), member=user.get_username(), role=membership.role)

    @transaction.atomic
    def transfer_ownership(self, owner, new_owner):
        """`new_owner` (already in the team) becomes an owner; `owner` stays on as an admin."""
        successor = self.acted_on(owner, new_owner, Action.TRANSFER)
        previous = self._member(owner)
        previous.role, successor.role = Role.ADMIN, Role.OWNER
        Membership.objects.bulk_update([previous, successor], ["role"])
        record(self, owner, Event.Verb.OWNERSHIP_TRANSFERRED,
               f"from {owner.get_username()} to {new_owner.get_username()}",
               previous=owner.get_username(), owner=new_owner.get_username())

    @property
    def has_money_history(self):
        return self.ledger.exists() or self.topups.exists()

    @transaction.atomic
    def close(self, actor=None):
        """Delete the team, or archive it if it has money history. Returns "deleted" or
        "archived". The ledger is append-only and protects its team, so a team that ever
        had money keeps its row (and its ledger), without members, invitations, share
        links, API keys or a way back in: nobody is left who could revoke them, so they
        are revoked here, each in the audit log. A wallet with money in it is refused:
        that money belongs to someone."""
        from studio.billing.models import Wallet

        wallet = Wallet.objects.select_for_update().get(team=self)  # money moves under this lock
        if wallet.balance or wallet.held:
            raise TeamHasMoney(f"The wallet still holds {wallet.balance_display}"
                               f"{f' ({wallet.held_display} of it for jobs in flight)' if wallet.held else ''}. "
                               "A team with money in its wallet cannot be deleted.")
        if not self.has_money_history:
            self.delete()
            return "deleted"
        self._revoke_public_access(actor)
        self.memberships.all().delete()
        self.invitations.pending().update(revoked_at=timezone.now())
        self.archived_at = timezone.now()
        self.save(update_fields=["archived_at"])
        return "archived"

    def _revoke_public_access(self, actor):
        from studio.gallery.models import ShareLink

        for link in ShareLink.objects.active().filter(gallery__team=self).select_related("gallery__team"):
            link.revoke(actor)
        for key in self.api_keys.filter(revoked_at__isnull=True).select_related("team"):
            key.revoke(actor)


def cap_text(micros):
    return "no cap" if micros is None else format_micros(micros)


class Membership(models.Model):
    team = models.ForeignKey(Team, models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    # What this member may spend per calendar month (micro-dollars); empty for no cap.
    monthly_cap = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # When the user last switched to this team: a new session (another login, another
    # device) starts in the team used last.
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "user"], name="one_membership_per_team")]

    def __str__(self):
        return f"{self.user} in {self.team} ({self.role})"

    @property
    def can_run_jobs(self):
        return self.role in RUNNING_ROLES

    def may(self, action, other):
        """May this member take `action` on `other` (a membership of the same team)?"""
        return may_act(self.role, other.role, action, on_self=other.pk == self.pk)

    @property
    def grantable_roles(self):
        """The roles this member may invite people as, or give."""
        return [role for role in reversed(Role) if may_act(self.role, role, Action.GRANT)]

    @cached_property
    def other_teams(self):
        """The user's other teams, to switch to."""
        return list(Team.objects.filter(memberships__user=self.user_id, archived_at__isnull=True)
                    .exclude(pk=self.team_id).order_by(Lower("name")))


def hash_token(token):
    return hashlib.sha256(token.encode()).hexdigest()


class InvitationQuerySet(models.QuerySet):
    def pending(self, now=None):
        return self.filter(accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=now or timezone.now())


class Invitation(models.Model):
    """A way into a team with a given role, used once. Its token (256 random bits) is
    the accept link's secret: shown to the inviter once and/or emailed, stored hashed."""

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    team = models.ForeignKey(Team, models.CASCADE, related_name="invitations")
    role = models.CharField(max_length=10, choices=Role.choices)
    # Where the link was emailed; empty for an invitation by link.
    email = models.EmailField(blank=True)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+")
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = InvitationQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["team", "-created_at"])]

    def __str__(self):
        return f"invitation {self.code} to {self.team} as {self.role}"

    @classmethod
    def find_valid(cls, token):
        """The pending invitation for `token`, or None: unknown, expired, revoked, used
        and archived teams alike. Looked up by hash, so the secret is never compared."""
        return (cls.objects.pending().filter(token_hash=hash_token(token), team__archived_at__isnull=True)
                .select_related("team", "invited_by").first())

    @transaction.atomic
    def accept(self, user):
        """Join the team; returns the new membership, or None if `user` is already in
        it (then the invitation stays unused). Claimed with a conditional update, so two
        clicks, or two people, cannot both use it."""
        if self.team.memberships.filter(user=user).exists():
            return None
        now = timezone.now()
        if not Invitation.objects.pending(now).filter(pk=self.pk).update(accepted_at=now, accepted_by=user):
            raise TeamError("This invitation is not valid.")
        self.accepted_at, self.accepted_by = now, user
        membership = Membership.objects.create(team=self.team, user=user, role=self.role)
        record(self.team, user, Event.Verb.JOINED, f"as {membership.get_role_display()}",
               member=user.get_username(), role=self.role, invitation=str(self.code))
        return membership

    def revoke(self):
        """Stop it at once. Only a pending invitation can be revoked: a used one is a
        membership by now, and revoking twice keeps the first moment."""
        now = timezone.now()
        if Invitation.objects.pending(now).filter(pk=self.pk).update(revoked_at=now):
            self.revoked_at = now

    @property
    def role_description(self):
        return ROLE_DESCRIPTIONS[self.role]

"""Teams, who is in them with which role, and the invitations that bring people in.

Every change to who is in a team, and with which role, is a method here: it locks the
team row (so two managers acting at once cannot, say, leave a team without an owner),
checks the rule that must never break, changes the rows and records its event, all in
one transaction. Who may ask for a change is decided before, in studio.accounts.access.
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

from studio.activity.models import Event, record


class Role(models.TextChoices):
    VIEWER = "viewer", "Viewer"
    MEMBER = "member", "Member"
    ADMIN = "admin", "Admin"
    OWNER = "owner", "Owner"


# Roles that may spend the team's money by running jobs.
RUNNING_ROLES = frozenset({Role.MEMBER, Role.ADMIN, Role.OWNER})

# What each role may hand out (by invitation or a role change) and take away. Owners
# are in nobody's list: ownership only moves by transfer.
GRANTABLE_ROLES = {
    Role.OWNER: (Role.ADMIN, Role.MEMBER, Role.VIEWER),
    Role.ADMIN: (Role.MEMBER, Role.VIEWER),
}

# What each role can do, in the words the team page and invitations use.
ROLE_DESCRIPTIONS = {
    Role.VIEWER: "Browses the library and galleries; runs nothing and spends nothing.",
    Role.MEMBER: "Runs jobs paid from the team's wallet, makes galleries and share links.",
    Role.ADMIN: "Runs jobs and manages the team: invites people, changes roles, removes members, sets spend caps.",
    Role.OWNER: "Manages the team and its wallet, can hand over ownership and can delete the team.",
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

    def _managed(self, actor, user, role=None):
        """Under the team lock: `user`'s membership, if `actor` may manage it (and hand
        out `role`). The views check the same first, to answer 403; this keeps the rule
        when two managers act at once."""
        acting, membership = self._member(actor), self._member(user)
        if not acting.may_manage(membership) or (role is not None and role not in acting.grantable_roles):
            raise TeamError("Your role in this team cannot do this.")
        return membership

    @transaction.atomic
    def invite(self, inviter, role, email="", days=INVITATION_DAYS):
        """A new invitation; returns (invitation, token). The token is the accept link's
        secret and cannot be recovered later: only its hash is stored."""
        if role not in self._member(inviter).grantable_roles:
            raise TeamError("Your role in this team cannot invite people as this role.")
        token = secrets.token_urlsafe(32)
        invitation = Invitation.objects.create(
            team=self, role=role, email=email, token_hash=hash_token(token), invited_by=inviter,
            expires_at=timezone.now() + datetime.timedelta(days=days))
        record(self, inviter, Event.Verb.INVITED, f"{email or 'someone with a link'} as {invitation.get_role_display()}",
               invitation=str(invitation.code), role=role, email=email)
        return invitation, token

    @transaction.atomic
    def change_role(self, user, role, actor):
        """Owners and admins change roles below their own; an owner's role changes only
        by transferring ownership."""
        self._lock()
        membership = self._managed(actor, user, role)
        old, membership.role = membership.role, role
        membership.save(update_fields=["role"])
        record(self, actor, Event.Verb.ROLE_CHANGED, f"{user.get_username()}: {old} → {role}",
               member=user.get_username(), old=old, new=role)
        return membership

    @transaction.atomic
    def remove_member(self, user, actor):
        self._lock()
        membership = self._managed(actor, user)
        membership.delete()
        record(self, actor, Event.Verb.REMOVED_MEMBER, f"{user.get_username()} ({membership.role})",
               member=user.get_username(), role=membership.role)

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
        self._lock()
        previous = self._member(owner)
        successor = self.memberships.select_related("user").filter(user=new_owner).first()
        if previous.role != Role.OWNER:
            raise TeamError("Only an owner can hand over ownership.")
        if successor is None or successor.pk == previous.pk or successor.role == Role.OWNER:
            raise TeamError("Choose another member of this team.")
        previous.role, successor.role = Role.ADMIN, Role.OWNER
        Membership.objects.bulk_update([previous, successor], ["role"])
        record(self, owner, Event.Verb.OWNERSHIP_TRANSFERRED,
               f"from {owner.get_username()} to {new_owner.get_username()}",
               previous=owner.get_username(), owner=new_owner.get_username())

    @property
    def has_money_history(self):
        return self.ledger.exists() or self.topups.exists()

    @transaction.atomic
    def close(self):
        """Delete the team, or archive it if it has money history. Returns "deleted" or
        "archived". The ledger is append-only and protects its team, so a team that ever
        had money keeps its row (and its ledger), without members, invitations or a way
        back in. A wallet with money in it is refused: that money belongs to someone."""
        from studio.billing.models import Wallet

        wallet = Wallet.objects.select_for_update().get(team=self)  # money moves under this lock
        if wallet.balance or wallet.held:
            raise TeamHasMoney(f"The wallet still holds {wallet.balance_display}"
                               f"{f' ({wallet.held_display} of it for jobs in flight)' if wallet.held else ''}. "
                               "A team with money in its wallet cannot be deleted.")
        if not self.has_money_history:
            self.delete()
            return "deleted"
        self.memberships.all().delete()
        self.invitations.pending().update(revoked_at=timezone.now())
        self.archived_at = timezone.now()
        self.save(update_fields=["archived_at"])
        return "archived"


class Membership(models.Model):
    team = models.ForeignKey(Team, models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    # What this member may spend per calendar month (micro-dollars); empty for no cap.
    monthly_cap = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "user"], name="one_membership_per_team")]

    def __str__(self):
        return f"{self.user} in {self.team} ({self.role})"

    @property
    def can_run_jobs(self):
        return self.role in RUNNING_ROLES

    @property
    def is_manager(self):
        return self.role in GRANTABLE_ROLES

    @property
    def grantable_roles(self):
        """The roles this member may invite people as, or give and take away."""
        return GRANTABLE_ROLES.get(self.role, ())

    def may_manage(self, other):
        """May change `other`'s role or remove them: owners manage admins, members and
        viewers; admins manage members and viewers; nobody manages an owner."""
        return other.role in self.grantable_roles

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

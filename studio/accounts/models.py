import uuid

from django.conf import settings
from django.db import models, transaction
from django.utils.text import slugify


class Role(models.TextChoices):
    VIEWER = "viewer", "Viewer"
    MEMBER = "member", "Member"
    ADMIN = "admin", "Admin"
    OWNER = "owner", "Owner"


# Roles that may spend the team's money by running jobs.
RUNNING_ROLES = frozenset({Role.MEMBER, Role.ADMIN, Role.OWNER})


class Team(models.Model):
    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    slug = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=100)
    # A banner shows, and the owners get one email, when the available balance drops
    # below this (micro-dollars); empty for no alert.
    low_balance_threshold = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

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

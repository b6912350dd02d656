"""The wallet and its append-only ledger. Amounts are integer micro-dollars
($1 = 1_000_000): exact, and cheap to sum in SQL."""

import uuid
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from studio.appendonly import AppendOnlyModel, AppendOnlyQuerySet

MICROS_PER_DOLLAR = 1_000_000


def format_micros(micros):
    """$0.058 style: as many decimals as the amount needs, at least two."""
    dollars = Decimal(micros) / MICROS_PER_DOLLAR
    text = f"{dollars:.6f}".rstrip("0")
    whole, _, frac = text.partition(".")
    return f"${whole}.{frac.ljust(2, '0')}"


def dollars_to_micros(amount):
    """Decimal dollars → micro-dollars; refuses fractions of a micro-dollar."""
    micros = Decimal(amount) * MICROS_PER_DOLLAR
    if micros != micros.to_integral_value():
        raise ValueError(f"{amount} has more than six decimal places")
    return int(micros)


class Wallet(models.Model):
    """The team's money. `balance` is what the team owns; `held` is the part reserved for
    jobs in flight; `available` is what a new job may hold. Both are cached sums of the
    ledger, written only by studio.billing.money under a row lock."""

    team = models.OneToOneField("accounts.Team", models.CASCADE, related_name="wallet")
    balance = models.BigIntegerField(default=0)
    held = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(held__gte=0), name="held_not_negative"),
            models.CheckConstraint(condition=models.Q(balance__gte=models.F("held")), name="no_overdraft"),
        ]

    def __str__(self):
        return f"wallet of {self.team}"

    @property
    def available(self):
        return self.balance - self.held

    @property
    def balance_display(self):
        return format_micros(self.balance)

    @property
    def held_display(self):
        return format_micros(self.held)

    @property
    def available_display(self):
        return format_micros(self.available)


class EntryQuerySet(AppendOnlyQuerySet):
    def spend(self):
        """Money actually charged: captures (negative balance deltas) as positive amounts."""
        return self.filter(kind=Entry.Kind.CAPTURE)


class Entry(AppendOnlyModel):
    class Kind(models.TextChoices):
        TOPUP = "topup", "Top-up"
        BONUS = "bonus", "Bonus"
        HOLD = "hold", "Hold"
        CAPTURE = "capture", "Capture"
        RELEASE = "release", "Release"
        ADJUSTMENT = "adjustment", "Adjustment"

    team = models.ForeignKey("accounts.Team", models.PROTECT, related_name="ledger")
    # Who did it: the member who submitted, the staff member who topped up; empty when
    # the studio itself settles a job.
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, models.PROTECT, null=True, blank=True, related_name="+")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    job = models.ForeignKey("jobs.Job", models.PROTECT, null=True, blank=True, related_name="ledger")
    topup = models.ForeignKey("billing.TopUp", models.PROTECT, null=True, blank=True, related_name="entries")
    # Denormalised from the job so spend reports aggregate this table alone.
    member = models.ForeignKey(settings.AUTH_USER_MODEL, models.PROTECT, null=True, blank=True, related_name="+")
    model = models.CharField(max_length=8, blank=True)
    # Signed effects of this entry on the wallet's balance and held amount.
    balance_delta = models.BigIntegerField()
    held_delta = models.BigIntegerField(default=0)
    balance_after = models.BigIntegerField()
    held_after = models.BigIntegerField()
    idempotency_key = models.CharField(max_length=120, unique=True)
    memo = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = EntryQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "entries"
        indexes = [
            models.Index(fields=["team", "-created_at"]),
            models.Index(fields=["kind", "created_at"]),
        ]

    def __str__(self):
        return f"{self.kind} {self.balance_delta:+}/{self.held_delta:+} for {self.team}"



class TopUp(models.Model):
    """Money paid into a wallet. The idempotency key makes a repeated submission (a
    double click, a retried command) book once."""

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    team = models.ForeignKey("accounts.Team", models.PROTECT, related_name="topups")
    amount = models.BigIntegerField()
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, models.PROTECT, null=True, blank=True, related_name="+")
    reason = models.CharField(max_length=200)
    idempotency_key = models.CharField(max_length=100, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(amount__gt=0), name="topup_positive")]

    def __str__(self):
        return f"{format_micros(self.amount)} for {self.team}"


class Price(models.Model):
    """The price list. A job's price is the row in effect when its hold is placed; it is
    frozen on the job, so later changes never touch it.

    A price takes effect from now on, never in the past: a backdated row would claim that
    jobs already priced at the old rate were priced at the new one. "Now" has a little
    slack (NOW_SLACK) for the moments between a form reading the clock and the row being
    written, and a row saved for such a moment takes effect when it is saved."""

    NOW_SLACK = timedelta(seconds=5)

    model = models.CharField(max_length=8, choices=[("fibo", "Bria FIBO"), ("rmbg", "Bria RMBG 2.0")])
    amount = models.BigIntegerField(help_text="micro-dollars per call ($0.04 = 40000)")
    effective_from = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.PROTECT, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["model", "-effective_from"]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="price_positive"),
            models.UniqueConstraint(fields=["model", "effective_from"], name="one_price_per_moment"),
        ]

    def __str__(self):
        return f"{self.get_model_display()} {format_micros(self.amount)} from {self.effective_from:%Y-%m-%d %H:%M}"

    def clean(self):
        now = timezone.now()
        if self.effective_from is not None and self.effective_from < now - self.NOW_SLACK:
            raise ValidationError({"effective_from": (
                f"A price can only take effect from now on, and this moment has passed "
                f"(it is {timezone.localtime(now):%Y-%m-%d %H:%M %Z} now)."
            )})

    def save(self, *args, **kwargs):
        """Refuses a moment that has passed, whoever saves the row (the admin, a command, a
        shell); no moment at all means now."""
        self.clean()
        now = timezone.now()
        self.effective_from = max(self.effective_from or now, now)
        super().save(*args, **kwargs)

    @property
    def amount_display(self):
        return format_micros(self.amount)

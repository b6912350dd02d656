import hashlib
import secrets
import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from studio.billing.models import format_micros


class Status(models.TextChoices):
    QUEUED = "QUEUED", "Queued"
    PROCESSING = "PROCESSING", "Processing"
    COMPLETED = "COMPLETED", "Completed"
    FAILED = "FAILED", "Failed"
    ERROR = "ERROR", "Error"


# Statuses only move forward along this order; terminal ones share the top rank.
RANK = {Status.QUEUED: 0, Status.PROCESSING: 1, Status.COMPLETED: 2, Status.FAILED: 2, Status.ERROR: 2}
TERMINAL = frozenset({Status.COMPLETED, Status.FAILED, Status.ERROR})


class JobQuerySet(models.QuerySet):
    def for_team(self, team):
        return self.filter(team=team)

    def in_flight(self):
        return self.exclude(status__in=TERMINAL)

    def due_for_poll(self, now=None):
        now = now or timezone.now()
        return self.in_flight().filter(submission=Job.Submission.ACCEPTED, next_poll_at__lte=now)

    def with_card_data(self):
        return self.select_related("created_by", "source_asset").prefetch_related("assets")


class Job(models.Model):
    class Model(models.TextChoices):
        FIBO = "fibo", "Bria FIBO"
        RMBG = "rmbg", "Bria RMBG 2.0"

    class Submission(models.TextChoices):
        PENDING = "pending", "Waiting for a worker"
        # Committed before the POST: a job left here after a crash may have reached the
        # gateway, so it is never re-sent blindly (its webhook brings the request_id home).
        SUBMITTING = "submitting", "Being sent to the gateway"
        ACCEPTED = "accepted", "Accepted by the gateway"
        REJECTED = "rejected", "Not accepted by the gateway"

    class Money(models.TextChoices):
        HELD = "held", "Held"
        CHARGED = "charged", "Charged"
        RELEASED = "released", "Released"

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    team = models.ForeignKey("accounts.Team", models.CASCADE, related_name="jobs")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.PROTECT, related_name="jobs")
    model = models.CharField(max_length=8, choices=Model.choices)
    params = models.JSONField(default=dict)
    # RMBG's input when it is an image in the studio's storage (an upload or a FIBO output).
    source_asset = models.ForeignKey(
        "library.Asset", models.SET_NULL, null=True, blank=True, related_name="derived_jobs"
    )
    price = models.BigIntegerField(help_text="micro-dollars, frozen when the hold is placed")
    # A job that ended in ERROR (never charged) may be run again, once, as a new job.
    retry_of = models.OneToOneField("self", models.SET_NULL, null=True, blank=True, related_name="retry")

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    submission = models.CharField(max_length=10, choices=Submission.choices, default=Submission.PENDING)
    money = models.CharField(max_length=8, choices=Money.choices, default=Money.HELD)
    error = models.TextField(blank=True)

    request_id = models.CharField(max_length=200, unique=True, null=True, blank=True)
    webhook_token_hash = models.CharField(max_length=64, blank=True)
    media_urls = models.JSONField(default=list, blank=True)
    outputs_fetched = models.BooleanField(default=False)
    output_error = models.CharField(max_length=300, blank=True)

    # A client of the studio's gateway-compatible API asked to be called back here.
    client_webhook_url = models.URLField(max_length=2000, blank=True)
    client_webhook_mode = models.CharField(max_length=8, blank=True)
    # A callback is owed to that client from the status change that called for it (this
    # moment, which also tells one owed callback from the next) until it is delivered,
    # refused or given up; the sweeper sends again what a worker's death lost.
    client_callback_owed_since = models.DateTimeField(null=True, blank=True, db_index=True)
    client_callback_attempts = models.PositiveSmallIntegerField(default=0)

    next_poll_at = models.DateTimeField(null=True, blank=True, db_index=True)
    poll_failures = models.PositiveIntegerField(default=0)
    # Offers the gateway could not take (unreachable, 429, 5xx); the job waits and is
    # offered again at next_poll_at.
    submit_attempts = models.PositiveIntegerField(default=0)
    fetch_attempts = models.PositiveIntegerField(default=0)

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    # Set explicitly on every change (also by queryset updates): the card poller compares it.
    updated_at = models.DateTimeField(default=timezone.now)
    submitted_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    objects = JobQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["team", "-created_at"]), models.Index(fields=["status", "submission"])]

    def __str__(self):
        return f"{self.get_model_display()} {self.code} {self.status}"

    @property
    def is_terminal(self):
        return self.status in TERMINAL

    @property
    def is_live(self):
        """Still changing: in flight, or finished with outputs still to fetch."""
        return not self.is_terminal or (self.status == Status.COMPLETED and not self.outputs_fetched and not self.output_error)

    @property
    def version(self):
        return f"{self.updated_at.timestamp():.6f}"

    @property
    def is_chargeable(self):
        """The money policy: the gateway bills what it accepted and finished as COMPLETED
        or FAILED (settings.CHARGED_STATUSES); everything else is released."""
        return self.submission == self.Submission.ACCEPTED and self.status in settings.CHARGED_STATUSES

    @property
    def price_display(self):
        return format_micros(self.price)

    @property
    def elapsed_seconds(self):
        return ((self.completed_at or timezone.now()) - self.created_at).total_seconds()

    @property
    def duration_display(self):
        """How long the job took, or has been running: "3.8 s", "2 min 5 s" (the card
        keeps a running job's figure ticking in the browser: static/js/studio.js)."""
        seconds = self.elapsed_seconds
        if seconds < 60:
            return f"{seconds:.1f} s"
        minutes, seconds = divmod(int(seconds), 60)
        return f"{minutes} min {seconds} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"

    @property
    def seed_display(self):
        seed = self.params.get("seed")
        return "random" if seed is None else seed

    @property
    def outputs(self):
        return [a for a in self.assets.all() if a.role == "output"]

    def webhook_token_matches(self, token):
        return bool(self.webhook_token_hash) and secrets.compare_digest(self.webhook_token_hash, hash_token(token))


def hash_token(token):
    return hashlib.sha256(token.encode()).hexdigest()


class WebhookDelivery(models.Model):
    """One row per (job, status) the gateway told us about by webhook: the unique
    constraint is what makes a duplicate delivery a no-op."""

    job = models.ForeignKey(Job, models.CASCADE, related_name="webhook_deliveries")
    status = models.CharField(max_length=10, choices=Status.choices)
    payload = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True)
    duplicates = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["job", "status"], name="one_delivery_per_status")]


class Lease(models.Model):
    """A named, expiring claim: one status poller loop per worker cluster, and the spacing
    of new loops (jobs/tasks.py)."""

    name = models.CharField(max_length=50, primary_key=True)
    holder = models.CharField(max_length=64, blank=True)
    expires_at = models.DateTimeField()

"""The one module that moves money.

Every function locks the wallet row (SELECT … FOR UPDATE on PostgreSQL, or for a hold
one conditional UPDATE; SQLite's IMMEDIATE transactions serialise writers), checks,
updates the cached totals and appends ledger entries whose unique idempotency keys make
a retried call a no-op. None of them does network I/O; the low-balance email is queued
with the transaction and sent by the worker (studio/mail.py).
"""

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Sum
from django.utils import timezone

from studio.accounts.models import Membership, Team
from studio.activity.models import Event, record
from studio.billing.models import Entry, Price, TopUp, Wallet, format_micros
from studio.ops.metrics import HOLDS_REFUSED
from studio.mail import queue_email


class InsufficientFunds(Exception):
    def __init__(self, needed, available):
        self.needed = needed
        self.available = available
        super().__init__(
            f"This costs {format_micros(needed)} but the team wallet has only "
            f"{format_micros(available)} available."
        )


class CapExceeded(Exception):
    def __init__(self, needed, cap, left):
        self.needed, self.cap, self.left = needed, cap, left
        super().__init__(
            f"This costs {format_micros(needed)}, over your monthly spend cap of {format_micros(cap)}: "
            f"{format_micros(left)} is left this month."
        )


def price_of(model, count=1, at=None):
    """The price in effect `at` (now), from the staff's price list; the settings'
    defaults stand in for a model the list does not name yet."""
    # Read for every submission: one indexed row, without building an ORM query.
    with connection.cursor() as cursor:
        cursor.execute(PRICE_SQL, [model, connection.ops.adapt_datetimefield_value(at or timezone.now())])
        row = cursor.fetchone()
    return (row[0] if row else settings.PRICES_MICROS[model]) * count


PRICE_SQL = f"""
SELECT amount FROM {Price._meta.db_table}
WHERE model = %s AND effective_from <= %s
ORDER BY effective_from DESC LIMIT 1
"""


def _book(wallet, *, kind, balance_delta, held_delta, key, **fields):
    """Apply deltas to a locked wallet and append the entry. Returns the entry, or None
    if an entry with this idempotency key was booked before."""
    if Entry.objects.filter(idempotency_key=key).exists():
        return None
    available_before = wallet.available
    wallet.balance += balance_delta
    wallet.held += held_delta
    try:
        with transaction.atomic():
            entry = Entry.objects.create(
                team_id=wallet.team_id, kind=kind, balance_delta=balance_delta, held_delta=held_delta,
                balance_after=wallet.balance, held_after=wallet.held, idempotency_key=key, **fields,
            )
    except IntegrityError:
        # Lost a race on the same key: the other booking stands.
        wallet.refresh_from_db()
        return None
    wallet.save(update_fields=["balance", "held"])
    _alert_if_low(wallet.team, wallet.team.low_balance_threshold, available_before, wallet.available)
    return entry


def _locked_wallet(team_id):
    return Wallet.objects.select_related("team").select_for_update(of=("self",)).get(team_id=team_id)


def _job_fields(job):
    return {"job": job, "member_id": job.created_by_id, "model": job.model}


# Locks the row, refuses an overdraft and reserves, in one statement (a concurrent hold
# waits for the lock; PostgreSQL then re-checks the condition on the row as committed),
# and returns the new totals with the team's low-balance threshold and the member's
# monthly cap (read under the lock, like the spending it is checked against).
HOLD_SQL = f"""
UPDATE {Wallet._meta.db_table} SET held = held + %s
WHERE team_id = %s AND balance - held >= %s
RETURNING balance, held,
    (SELECT low_balance_threshold FROM {Team._meta.db_table} WHERE id = team_id),
    (SELECT monthly_cap FROM {Membership._meta.db_table} WHERE team_id = {Wallet._meta.db_table}.team_id AND user_id = %s)
"""


# No savepoint of its own: a refused hold fails the whole submission around it.
@transaction.atomic(savepoint=False)
def hold(job, actor):
    """Reserve the price of `job`, created in the caller's transaction. Raises
    InsufficientFunds or CapExceeded, booking nothing, when the wallet or the member's
    monthly cap does not cover it.

    The wallet row stays locked until the transaction commits: call this last. The job
    is new, so no hold can have been booked for it yet; the entry's unique idempotency
    key still guarantees it."""
    with connection.cursor() as cursor:
        cursor.execute(HOLD_SQL, [job.price, job.team_id, job.price, job.created_by_id])
        row = cursor.fetchone()
    if row is None:
        HOLDS_REFUSED.labels("insufficient_funds").inc()  # a count, outside the books: not rolled back
        raise InsufficientFunds(job.price, Wallet.objects.get(team_id=job.team_id).available)
    balance, held, threshold, cap = row
    _check_cap(job, cap)
    entry = Entry.objects.create(
        team_id=job.team_id, kind=Entry.Kind.HOLD, balance_delta=0, held_delta=job.price,
        balance_after=balance, held_after=held, idempotency_key=f"job:{job.code}:hold",
        actor=actor, **_job_fields(job),
    )
    _alert_if_low(job.team, threshold, balance - held + job.price, balance - held)
    return entry


def _check_cap(job, cap):
    """Under the wallet lock, so concurrent submissions by one member are counted."""
    if cap is None:  # no cap, or no longer a member
        return
    spent = spent_this_month(job.team_id, job.created_by_id, exclude_job=job)
    if spent + job.price > cap:
        HOLDS_REFUSED.labels("cap").inc()
        raise CapExceeded(job.price, cap, max(cap - spent, 0))


def month_start(now=None):
    now = timezone.localtime(now or timezone.now())
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def spent_this_month(team_id, user_id, exclude_job=None):
    """What the member has committed this calendar month: jobs held or charged (a
    released job costs nothing)."""
    from jobs.models import Job

    jobs = Job.objects.filter(team_id=team_id, created_by_id=user_id, created_at__gte=month_start(),
                              money__in=[Job.Money.HELD, Job.Money.CHARGED])
    if exclude_job is not None:
        jobs = jobs.exclude(pk=exclude_job.pk)
    return jobs.aggregate(total=Sum("price"))["total"] or 0


@transaction.atomic
def capture(job):
    """Turn the job's hold into a charge."""
    wallet = _locked_wallet(job.team_id)
    return _book(wallet, kind=Entry.Kind.CAPTURE, balance_delta=-job.price, held_delta=-job.price,
                 key=f"job:{job.code}:settle", **_job_fields(job))


@transaction.atomic
def release(job):
    """Give the job's hold back to the team."""
    wallet = _locked_wallet(job.team_id)
    return _book(wallet, kind=Entry.Kind.RELEASE, balance_delta=0, held_delta=-job.price,
                 key=f"job:{job.code}:settle", **_job_fields(job))


@transaction.atomic
def top_up(team, amount, *, actor=None, reason, key):
    """Credit the wallet. `key` identifies the top-up: the same key books once, and
    returns None the second time. The team's first top-up earns the promotion bonus."""
    if amount <= 0:
        raise ValueError("a top-up must be a positive amount")
    if not reason.strip():
        raise ValueError("a top-up needs a reason")
    wallet = _locked_wallet(team.pk)
    if TopUp.objects.filter(idempotency_key=key).exists():
        return None
    first = not TopUp.objects.filter(team=team).exists()
    topup = TopUp.objects.create(team=team, amount=amount, actor=actor, reason=reason[:200], idempotency_key=key)
    _book(wallet, kind=Entry.Kind.TOPUP, balance_delta=amount, held_delta=0, key=f"topup:{key}",
          actor=actor, topup=topup, memo=reason[:200])
    record(team, actor, Event.Verb.TOPPED_UP, f"{format_micros(amount)}: {reason}"[:300], topup=str(topup.code))
    bonus = settings.FIRST_TOPUP_BONUS_MICROS
    if first and bonus:
        _book(wallet, kind=Entry.Kind.BONUS, balance_delta=bonus, held_delta=0, key=f"team:{team.pk}:first-topup-bonus",
              actor=actor, topup=topup, memo=f"First top-up bonus ({format_micros(bonus)})")
        record(team, actor, Event.Verb.BONUS, format_micros(bonus), topup=str(topup.code))
    return topup


# -- low balance --------------------------------------------------------------------


def _alert_if_low(team, threshold, available_before, available):
    """One email to the owners each time the available balance drops through the
    team's threshold (not on every job below it)."""
    if threshold is None or not (available_before >= threshold > available):
        return
    owners = team.memberships.filter(role="owner").exclude(user__email="").values_list("user__email", flat=True)
    queue_email(
        f"Bria Studio: {team.name} is below {format_micros(threshold)}",
        f"The wallet of {team.name} has {format_micros(available)} available, below the "
        f"{format_micros(threshold)} you asked to be warned at. Top it up to keep jobs running.",
        owners,
    )


def is_low(wallet):
    threshold = wallet.team.low_balance_threshold
    return threshold is not None and wallet.available < threshold


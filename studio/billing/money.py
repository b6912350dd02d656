"""The one module that moves money.

Every function locks the wallet row (SELECT … FOR UPDATE on PostgreSQL; SQLite's
IMMEDIATE transactions serialise writers), checks, updates the cached totals and appends
one ledger entry whose unique idempotency key makes a retried call a no-op. None of
them does network I/O.
"""

from django.conf import settings
from django.db import IntegrityError, transaction

from studio.billing.models import Entry, Wallet, format_micros


class InsufficientFunds(Exception):
    def __init__(self, needed, available):
        self.needed = needed
        self.available = available
        super().__init__(
            f"This costs {format_micros(needed)} but the team wallet has only "
            f"{format_micros(available)} available."
        )


def price_of(model, count=1):
    return settings.PRICES_MICROS[model] * count


def _book(wallet, *, kind, balance_delta, held_delta, key, actor=None, job=None, memo=""):
    """Apply deltas to a locked wallet and append the entry. Returns the entry, or None
    if an entry with this idempotency key was booked before."""
    if Entry.objects.filter(idempotency_key=key).exists():
        return None
    wallet.balance += balance_delta
    wallet.held += held_delta
    try:
        with transaction.atomic():
            entry = Entry.objects.create(
                team_id=wallet.team_id, actor=actor, job=job, kind=kind,
                balance_delta=balance_delta, held_delta=held_delta,
                balance_after=wallet.balance, held_after=wallet.held,
                idempotency_key=key, memo=memo,
            )
    except IntegrityError:
        # Lost a race on the same key (possible only for top-ups, whose keys come from
        # outside): the other booking stands.
        wallet.refresh_from_db()
        return None
    wallet.save(update_fields=["balance", "held"])
    return entry


def _locked_wallet(team_id):
    return Wallet.objects.select_for_update().get(team_id=team_id)


@transaction.atomic
def hold(job, actor):
    """Reserve the job's price. Raises InsufficientFunds and books nothing when the
    available balance does not cover it."""
    wallet = _locked_wallet(job.team_id)
    if wallet.available < job.price:
        raise InsufficientFunds(job.price, wallet.available)
    return _book(
        wallet, kind=Entry.Kind.HOLD, balance_delta=0, held_delta=job.price,
        key=f"job:{job.code}:hold", actor=actor, job=job,
    )


@transaction.atomic
def capture(job):
    """Turn the job's hold into a charge."""
    wallet = _locked_wallet(job.team_id)
    return _book(
        wallet, kind=Entry.Kind.CAPTURE, balance_delta=-job.price, held_delta=-job.price,
        key=f"job:{job.code}:settle", job=job,
    )


@transaction.atomic
def release(job):
    """Give the job's hold back to the team."""
    wallet = _locked_wallet(job.team_id)
    return _book(
        wallet, kind=Entry.Kind.RELEASE, balance_delta=0, held_delta=-job.price,
        key=f"job:{job.code}:settle", job=job,
    )


@transaction.atomic
def top_up(team, amount, *, actor=None, reason="", key):
    """Credit the wallet. `key` identifies the top-up: the same key books once."""
    if amount <= 0:
        raise ValueError("a top-up must be a positive amount")
    wallet = _locked_wallet(team.pk)
    return _book(
        wallet, kind=Entry.Kind.TOPUP, balance_delta=amount, held_delta=0,
        key=f"topup:{key}", actor=actor, memo=reason[:200],
    )

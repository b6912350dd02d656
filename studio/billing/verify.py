"""Every money invariant, checked against the database in SQL. Each check returns the
drifts it finds as sentences an operator can act on; an empty list means the books
balance."""

from django.conf import settings
from django.db.models import Count, F, Q, Sum, Window
from django.db.models.functions import Lag

from jobs.models import TERMINAL, Job
from studio.billing.models import Entry, TopUp, Wallet, format_micros


def verify():
    drifts = []
    for check in (wallets_equal_ledger, nothing_negative, entries_chain, jobs_have_their_money_effect,
                  topups_booked_once, keys_booked_once):
        drifts += check()
    return drifts


def wallets_equal_ledger():
    sums = {row["team"]: row for row in Entry.objects.values("team").annotate(
        balance=Sum("balance_delta"), held=Sum("held_delta"))}
    drifts = []
    for wallet in Wallet.objects.select_related("team"):
        ledger = sums.get(wallet.team_id, {"balance": 0, "held": 0})
        if (wallet.balance, wallet.held) != (ledger["balance"], ledger["held"]):
            drifts.append(
                f"team {wallet.team.slug}: wallet says balance {format_micros(wallet.balance)} held "
                f"{format_micros(wallet.held)}, ledger says balance {format_micros(ledger['balance'])} held "
                f"{format_micros(ledger['held'])}"
            )
    return drifts


def nothing_negative():
    drifts = [f"team {w.team.slug}: negative wallet (balance {format_micros(w.balance)}, held {format_micros(w.held)})"
              for w in Wallet.objects.select_related("team").filter(Q(balance__lt=F("held")) | Q(held__lt=0))]
    negative = Entry.objects.filter(Q(balance_after__lt=F("held_after")) | Q(held_after__lt=0))
    drifts += [f"entry {e.pk} ({e.kind}, team {e.team_id}) leaves the wallet overdrawn" for e in negative[:100]]
    return drifts


def entries_chain():
    """Each entry's balance_after/held_after follows from the one before it."""
    rows = Entry.objects.annotate(
        prev_balance=Window(Lag("balance_after"), partition_by=[F("team")], order_by=F("id").asc()),
        prev_held=Window(Lag("held_after"), partition_by=[F("team")], order_by=F("id").asc()),
    ).values_list("id", "team_id", "balance_delta", "held_delta", "balance_after", "held_after", "prev_balance",
                  "prev_held")
    drifts = []
    for pk, team_id, db, dh, balance, held, prev_balance, prev_held in rows.iterator(chunk_size=10_000):
        expected = ((prev_balance or 0) + db, (prev_held or 0) + dh)
        if (balance, held) != expected:
            drifts.append(f"entry {pk} (team {team_id}) says balance/held after {balance}/{held}, "
                          f"its predecessor implies {expected[0]}/{expected[1]}")
    return drifts


def jobs_have_their_money_effect():
    """A job in flight holds its price; a finished one has exactly one settlement, the
    capture its policy asks for (COMPLETED or FAILED after the gateway took it) or else
    the release, and no hold left open."""
    jobs = Job.objects.annotate(
        holds=Count("ledger", filter=Q(ledger__kind=Entry.Kind.HOLD)),
        captures=Count("ledger", filter=Q(ledger__kind=Entry.Kind.CAPTURE)),
        releases=Count("ledger", filter=Q(ledger__kind=Entry.Kind.RELEASE)),
        held=Sum("ledger__held_delta"),
    ).values_list("code", "status", "submission", "money", "holds", "captures", "releases", "held")
    drifts = []
    for code, status, submission, money_state, holds, captures, releases, held in jobs.iterator(chunk_size=10_000):
        if holds != 1:
            drifts.append(f"job {code}: {holds} holds instead of 1")
        if status not in TERMINAL:
            if captures or releases or money_state != Job.Money.HELD:
                drifts.append(f"job {code} is {status} but already settled ({money_state})")
            continue
        charged = submission == Job.Submission.ACCEPTED and status in settings.CHARGED_STATUSES
        want = (1, 0, Job.Money.CHARGED) if charged else (0, 1, Job.Money.RELEASED)
        if (captures, releases, money_state) != want:
            drifts.append(f"job {code} ({status}, {submission}): {captures} captures, {releases} releases, "
                          f"marked {money_state}; policy wants {'a capture' if charged else 'a release'}")
        if held:
            drifts.append(f"job {code} is {status} with {format_micros(held)} still held")
    return drifts


def topups_booked_once():
    topups = TopUp.objects.annotate(
        booked=Count("entries", filter=Q(entries__kind=Entry.Kind.TOPUP)),
        credited=Sum("entries__balance_delta", filter=Q(entries__kind=Entry.Kind.TOPUP)),
    ).filter(~Q(booked=1) | ~Q(credited=F("amount")))
    return [f"top-up {t.code} of {format_micros(t.amount)}: booked {t.booked} times for "
            f"{format_micros(t.credited or 0)}" for t in topups]


def keys_booked_once():
    twice = Entry.objects.values("idempotency_key").annotate(n=Count("id")).filter(n__gt=1)
    return [f"idempotency key {row['idempotency_key']!r} booked {row['n']} times" for row in twice]

"""Spend: what the ledger charged, grouped in SQL.

Spend is the capture entries, as positive amounts (-balance_delta), each carrying its
team, member, model and job. Days are UTC days and a period includes both of its dates.
Every query below is one statement, whatever the number of teams or entries: the views,
the CSV export and the benchmark all call these.
"""

from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import urlencode

from django.db import connection, transaction
from django.db.models import Count, F, Sum
from django.db.models.functions import TruncDate

from studio.billing.models import Entry


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # included

    @property
    def days(self):
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]

    @property
    def since(self):
        return datetime.combine(self.start, time.min, tzinfo=UTC)

    @property
    def before(self):
        return datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=UTC)

    @property
    def query(self):
        """start=…&end=…, for links that keep the period."""
        return urlencode({"start": self.start.isoformat(), "end": self.end.isoformat()})


@contextmanager
def planned_per_run():
    """The queries inside are planned for this run's parameters. With prepared
    statements (settings: DATABASE_PREPARED_STATEMENTS), PostgreSQL may settle on one
    generic plan for a report it has run a few times on a connection; a plan made
    without knowing the period and team is several times slower over a long period.

    On PostgreSQL the queries run in one transaction that asks for custom plans with a
    transaction-local setting (SET LOCAL): it ends with the transaction, committed or
    rolled back, so nothing needs putting back and a pooler in transaction mode
    (PgBouncer) never hands the setting to another client. Inside a transaction already
    begun it lasts until that one ends. Elsewhere nothing changes: SQLite has no
    planner setting, and an IMMEDIATE transaction there would lock out writers. Used as
    a decorator on the report views, too; a CSV the view returns streams its rows after
    the transaction, in autocommit, as any streamed response does."""
    if connection.vendor != "postgresql":
        yield
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('plan_cache_mode', 'force_custom_plan', true)")
        yield


def spend(period, *, team=None, member=None):
    """The capture entries booked in the period, optionally for one team and member."""
    entries = Entry.objects.spend().filter(created_at__gte=period.since, created_at__lt=period.before)
    if team is not None:
        entries = entries.filter(team=team)
    if member is not None:
        entries = entries.filter(member=member)
    return entries


def _totals():
    return {"amount": -Sum("balance_delta"), "jobs": Count("id")}


def _by_day(entries):
    return entries.annotate(day=TruncDate("created_at", tzinfo=UTC))


def by_team_and_by_model(entries):
    """Spend by team and spend by model (the overview)."""
    return _by_who_and_by_model(entries, ["team_id", "team__code", "team__name", "team__slug"],
                                order=lambda row: (-row["amount"], row["team__name"]))


def by_member_and_by_model(entries):
    """Spend by member and spend by model (a team's page)."""
    return _by_who_and_by_model(entries, ["member_id", "member__username"],
                                order=lambda row: (-row["amount"], row["member__username"] is None,
                                                   row["member__username"] or ""))


def _by_who_and_by_model(entries, who, order):
    """Two splits from one pass over the period's entries: grouped by `who` and model in
    SQL (a few rows per team or member), then summed each way here. Each split is a full
    scan of the period, so this halves the work of two grouped queries."""
    rows = list(entries.values(*who, "model").annotate(**_totals()))
    return sorted(_summed(rows, who), key=order), sorted(_summed(rows, ["model"]), key=lambda row: row["model"])


def _summed(rows, fields):
    totals = {}
    for row in rows:
        key = tuple(row[field] for field in fields)
        total = totals.setdefault(key, {**{field: row[field] for field in fields}, "amount": 0, "jobs": 0})
        total["amount"] += row["amount"]
        total["jobs"] += row["jobs"]
    return list(totals.values())


def by_model(entries):
    return list(entries.values("model").annotate(**_totals()).order_by("model"))


def by_day_and_model(entries):
    """One row per day and model that had spend; the chart and the daily table."""
    return list(_by_day(entries).values("day", "model").annotate(**_totals()).order_by("day", "model"))


def by_day_team_and_model(entries):
    """The overview's CSV rows, streamed."""
    rows = _by_day(entries).values("day", "team__name", "team__code", "model").annotate(**_totals())
    return rows.order_by("day", "team__name", "team__code", "model").iterator()


def by_day_member_and_model(entries):
    """A team's CSV rows, streamed."""
    rows = _by_day(entries).values("day", "member__username", "model").annotate(**_totals())
    return rows.order_by("day", "member__username", "model").iterator()


def charged_jobs(entries):
    """The entries themselves, newest first, with their jobs: a member's drill-down."""
    return entries.select_related("job").annotate(cost=-F("balance_delta")).order_by("-created_at", "-id")


def total(rows):
    """The sum of grouped rows (each entry is in exactly one group): the ledger's total."""
    return {"amount": sum(row["amount"] for row in rows), "jobs": sum(row["jobs"] for row in rows)}

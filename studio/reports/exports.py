"""CSV downloads of the reports, streamed row by row through studio.csv (which keeps a
spreadsheet from running user text as a formula); amounts as exact dollars with at least
two decimals (0.058, 0.04, 1.00) through Decimal, never float."""

from decimal import Decimal

from studio.billing.models import format_micros
from studio.csv import csv_download
from studio.reports import queries


def dollars(micros):
    return Decimal(format_micros(micros).removeprefix("$"))


def what_was_done(entry):
    """A job's line in the member report: its prompt, or what RMBG does."""
    if entry.model == "rmbg":
        return "background removal"
    return entry.job.params.get("prompt", "") if entry.job else ""


def _name(*parts, period):
    return "-".join(["spend", *parts, period.start.isoformat(), period.end.isoformat()]) + ".csv"


def overview_csv(period, entries):
    rows = (
        [row["day"].isoformat(), row["team__name"], row["team__code"], row["model"], row["jobs"],
         dollars(row["amount"])]
        for row in queries.by_day_team_and_model(entries)
    )
    header = ["date", "team", "team_code", "model", "jobs", "amount_usd"]
    return csv_download(_name("all-teams", period=period), header, rows)


def team_csv(team, period, entries):
    rows = (
        [row["day"].isoformat(), row["member__username"], row["model"], row["jobs"], dollars(row["amount"])]
        for row in queries.by_day_member_and_model(entries)
    )
    return csv_download(_name(team.slug, period=period), ["date", "member", "model", "jobs", "amount_usd"], rows)


def member_csv(team, member, period, entries):
    rows = (
        [entry.created_at.isoformat(), entry.job.code if entry.job else "", entry.model, what_was_done(entry),
         entry.job.status if entry.job else "", dollars(entry.cost)]
        for entry in queries.charged_jobs(entries).iterator(chunk_size=2000)
    )
    header = ["charged_at", "job", "model", "prompt", "status", "amount_usd"]
    return csv_download(_name(team.slug, member.get_username(), period=period), header, rows)

"""CSV downloads of the reports: streamed row by row with csv.writer, amounts as exact
dollars (0.058) through Decimal, never float."""

import csv
import itertools

from django.http import StreamingHttpResponse

from studio.billing.models import format_micros
from studio.reports import queries

# A spreadsheet runs a cell starting with one of these as a formula; prompts, team names
# and usernames are typed by users.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def dollars(micros):
    return format_micros(micros).removeprefix("$")


def text(value):
    value = "" if value is None else str(value)
    return f"'{value}" if value.startswith(FORMULA_START) else value


def what_was_done(entry):
    """A job's line in the member report: its prompt, or what RMBG does."""
    if entry.model == "rmbg":
        return "background removal"
    return entry.job.params.get("prompt", "") if entry.job else ""


class _Echo:
    """csv.writer writes into this and gets the line back, for streaming."""

    def write(self, value):
        return value


def _stream(filename, header, rows):
    writer = csv.writer(_Echo())
    response = StreamingHttpResponse(
        (writer.writerow(row) for row in itertools.chain([header], rows)), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _name(*parts, period):
    return "-".join(["spend", *parts, period.start.isoformat(), period.end.isoformat()]) + ".csv"


def overview_csv(period, entries):
    rows = (
        [row["day"].isoformat(), text(row["team__name"]), row["team__code"], row["model"], row["jobs"],
         dollars(row["amount"])]
        for row in queries.by_day_team_and_model(entries)
    )
    header = ["date", "team", "team_code", "model", "jobs", "amount_usd"]
    return _stream(_name("all-teams", period=period), header, rows)


def team_csv(team, period, entries):
    rows = (
        [row["day"].isoformat(), text(row["member__username"]), row["model"], row["jobs"], dollars(row["amount"])]
        for row in queries.by_day_member_and_model(entries)
    )
    return _stream(_name(team.slug, period=period), ["date", "member", "model", "jobs", "amount_usd"], rows)


def member_csv(team, member, period, entries):
    rows = (
        [entry.created_at.isoformat(), entry.job.code if entry.job else "", entry.model, text(what_was_done(entry)),
         entry.job.status if entry.job else "", dollars(entry.cost)]
        for entry in queries.charged_jobs(entries).iterator(chunk_size=2000)
    )
    header = ["charged_at", "job", "model", "prompt", "status", "amount_usd"]
    return _stream(_name(team.slug, member.get_username(), period=period), header, rows)

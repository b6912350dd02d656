"""The team's wallet page as its members use it: the figures, the ledger and its filters,
pages, what each job cost, the CSV export, and what other teams and anonymous visitors
get. Ledger activity goes through the real money code."""

import csv
import datetime
import io
from contextlib import contextmanager
from unittest import mock

import pytest
from django.test import Client
from django.utils import timezone

from jobs.actions import start_fibo
from jobs.models import Job
from jobs.transitions import apply_status
from studio.accounts.models import Membership, Role, Team
from studio.billing import money
from studio.billing.models import Price
from tests.conftest import login, make_user

HX = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "ledger"}
MINUS = "\u2212"


def fibo(membership, prompt="a red balloon"):
    return start_fibo(membership, {"prompt": prompt, "aspect_ratio": "1:1", "steps_num": 30, "guidance_scale": "7.5"})


def settle(job, status="COMPLETED"):
    Job.objects.filter(pk=job.pk).update(submission="accepted", request_id=f"r-{job.pk}")
    apply_status(job.pk, status)


def owner_membership(team, owner):
    return Membership.objects.select_related("team", "user").get(team=team, user=owner)


@contextmanager
def booked_at(moment):
    """Activity as if it happened at `moment`: the models' created_at defaults read the
    clock through django.utils.timezone."""

    class Clock(datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return moment.astimezone(tz) if tz else moment.replace(tzinfo=None)

    with mock.patch("django.utils.timezone.datetime", Clock):
        yield


def at(text):
    return datetime.datetime.fromisoformat(text).replace(tzinfo=datetime.UTC)


def rows(response):
    return response.content.decode().count('<tr class="entry-')


def csv_rows(response):
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


# -- access --------------------------------------------------------------------------


def test_the_wallet_needs_a_login(db):
    response = Client(HTTP_HOST="127.0.0.1").get("/wallet/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/?next=/wallet/"


def test_the_csv_needs_a_login(db):
    response = Client(HTTP_HOST="127.0.0.1").get("/wallet/export.csv")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_it_only_answers_get(member):
    assert login(member).post("/wallet/").status_code == 405
    assert login(member).post("/wallet/export.csv").status_code == 405


def test_a_viewer_can_see_it(viewer, team):
    response = login(viewer).get("/wallet/")
    assert response.status_code == 200
    assert rows(response) == 1 and "test credit" in response.content.decode()


def test_the_outsider_sees_only_their_own_empty_wallet(outsider, membership):
    settle(fibo(membership, "acme secret plans"))
    client = login(outsider)
    response = client.get("/wallet/")
    html = response.content.decode()
    assert response.status_code == 200 and rows(response) == 0
    assert "acme secret plans" not in html and "test credit" not in html
    assert 'id="figure-balance">$0.00<' in html
    assert 'id="empty-wallet"' in html and "Top-ups are booked by the studio's staff" in html
    # Naming acme's members in the filter reaches nothing either.
    for name in ("mark", "olivia"):
        assert rows(client.get(f"/wallet/?member={name}")) == 0
        assert csv_rows(client.get(f"/wallet/export.csv?member={name}")) == []
    assert csv_rows(client.get("/wallet/export.csv")) == []


def test_a_member_of_another_team_matches_nothing(member, outsider, membership):
    fibo(membership)
    response = login(member).get("/wallet/?member=oscar")
    assert response.status_code == 200 and rows(response) == 0
    assert "No entries match these filters" in response.content.decode()
    assert 'id="empty-wallet"' not in response.content.decode()


def test_an_empty_wallet_tells_a_member_to_ask_an_owner(outsider, db):
    nina = make_user("nina")
    Membership.objects.create(team=Team.objects.get(slug="other"), user=nina, role=Role.MEMBER)
    html = login(nina).get("/wallet/").content.decode()
    assert "The wallet is empty" in html and "Ask an owner of Other" in html
    assert "No jobs in this period" in html


# -- figures and rows ----------------------------------------------------------------


def test_it_shows_balance_held_and_available_at_the_top(member, membership):
    fibo(membership)
    html = login(member).get("/wallet/").content.decode()
    assert 'id="figure-balance">$1.00<' in html
    assert 'id="figure-held">$0.04<' in html
    assert 'id="figure-available">$0.96<' in html


def test_each_row_says_when_what_who_and_how_much(member, team, membership):
    job = fibo(membership, "a lighthouse at dusk")
    settle(job)
    html = login(member).get("/wallet/").content.decode()
    capture, hold, credit = html.index('class="entry-capture"'), html.index('class="entry-hold"'), html.index('class="entry-topup"')
    assert capture < hold < credit  # newest first
    capture_row = html[capture:hold]
    assert "Capture" in capture_row and ">mark<" in capture_row
    assert f'href="/jobs/{job.code}/"' in capture_row and "Bria FIBO" in capture_row
    assert "a lighthouse at dusk" in capture_row
    assert f"{MINUS}$0.04" in capture_row and "$0.96" in capture_row and "$0.00" in capture_row
    hold_row = html[hold:credit]
    assert "+$0.04" in hold_row and "$1.00" in hold_row and ">mark<" in hold_row
    credit_row = html[credit:html.index("</tbody>", credit)]
    assert "Top-up" in credit_row and "test credit" in credit_row and "+$1.00" in credit_row


def test_a_long_prompt_is_cut_short(member, membership):
    fibo(membership, "word " * 100)
    html = login(member).get("/wallet/").content.decode()
    assert "word " * 100 not in html and "…" in html


def test_jobs_this_period_show_what_each_job_cost(member, membership):
    settle(fibo(membership, "charged one"), "COMPLETED")
    settle(fibo(membership, "released one"), "ERROR")
    fibo(membership, "still running")
    html = login(member).get("/wallet/").content.decode()
    jobs = html[html.index('id="period-jobs"'):]
    assert "all time" in jobs
    assert "3 jobs · <strong>$0.04</strong> charged · $0.04 held for jobs in flight · 1 released" in jobs
    for prompt, state in [("charged one", "charged"), ("released one", "released"), ("still running", "held")]:
        row = jobs[jobs.index(prompt):]
        assert f'class="money money-{state}"' in row[:row.index("</tr>")]


def test_jobs_this_period_stop_at_fifty_with_a_note(member, team, membership):
    money.top_up(team, 2_000_000, reason="more", key="more")
    for n in range(51):
        settle(fibo(membership, f"job {n}"), "ERROR")
    html = login(member).get("/wallet/").content.decode()
    jobs = html[html.index('id="period-jobs"'):]
    assert jobs.count("<tr>") == 51  # the head and fifty jobs
    assert "Showing the latest 50 of 51 jobs" in jobs


# -- filters -------------------------------------------------------------------------


def test_it_filters_by_kind(member, membership):
    settle(fibo(membership))
    response = login(member).get("/wallet/?kind=capture")
    assert response.status_code == 200 and rows(response) == 1
    assert 'class="entry-capture"' in response.content.decode()
    assert '<option value="capture" selected>' in response.content.decode()


def test_it_filters_by_member_or_actor(member, owner, team, membership):
    settle(fibo(membership, "mark's job"))
    settle(fibo(owner_membership(team, owner), "olivia's job"), "ERROR")
    client = login(member)
    html = client.get("/wallet/?member=mark").content.decode()
    assert rows(client.get("/wallet/?member=mark")) == 2  # mark's hold (actor) and capture (member)
    assert "mark&#x27;s job" in html and "olivia&#x27;s job" not in html
    assert '<option value="mark" selected>' in html
    olivia = client.get("/wallet/?member=olivia")
    assert rows(olivia) == 2 and "mark&#x27;s job" not in olivia.content.decode()
    # Jobs this period follow the member too.
    jobs = html[html.index('id="period-jobs"'):]
    assert "mark&#x27;s job" in jobs and "olivia&#x27;s job" not in jobs


def test_the_member_select_offers_the_teams_members_only(member, viewer, outsider):
    html = login(member).get("/wallet/").content.decode()
    select = html[html.index('name="member"'):html.index("</select>", html.index('name="member"'))]
    assert [name in select for name in ("mark", "olivia", "vera", "oscar")] == [True, True, True, False]


@pytest.fixture
def three_days(team, membership):
    """A top-up at noon on 1 March, a job at the last second of 2 March, a job at midnight
    on 3 March."""
    with booked_at(at("2026-03-01T12:00:00")):
        money.top_up(team, 500_000, reason="march credit", key="march")
    with booked_at(at("2026-03-02T23:59:59.999999")):
        late = fibo(membership, "late on the second")
    with booked_at(at("2026-03-03T00:00:00")):
        early = fibo(membership, "early on the third")
    return late, early


@pytest.mark.parametrize("query, expected", [
    ("date_from=2026-03-01&date_to=2026-03-01", ["march credit"]),
    ("date_from=2026-03-02&date_to=2026-03-02", ["late on the second"]),
    ("date_to=2026-03-02", ["march credit", "late on the second"]),
    ("date_from=2026-03-02", ["late on the second", "early on the third", "test credit"]),
    ("date_from=2026-03-03&date_to=2026-03-03", ["early on the third"]),
    ("date_from=2026-02-01&date_to=2026-02-28", []),
])
def test_it_filters_by_dates_including_the_last_day(member, three_days, query, expected):
    html = login(member).get(f"/wallet/?{query}").content.decode()
    ledger = html[html.index('id="ledger"'):html.index('id="period-jobs"')]
    assert rows(login(member).get(f"/wallet/?{query}")) == len(expected)
    for text in ["march credit", "late on the second", "early on the third", "test credit"]:
        assert (text in ledger) == (text in expected), text


def test_jobs_this_period_follow_the_dates(member, three_days):
    html = login(member).get("/wallet/?date_from=2026-03-02&date_to=2026-03-02").content.decode()
    jobs = html[html.index('id="period-jobs"'):]
    assert "2026-03-02</small>" in jobs
    assert "late on the second" in jobs and "early on the third" not in jobs


def test_filters_combine(member, owner, team, membership, three_days):
    with booked_at(at("2026-03-02T10:00:00")):
        fibo(owner_membership(team, owner), "olivia on the second")
    client = login(member)
    both = client.get("/wallet/?kind=hold&member=mark&date_from=2026-03-02&date_to=2026-03-02")
    assert rows(both) == 1 and "late on the second" in both.content.decode()
    assert rows(client.get("/wallet/?kind=hold&date_from=2026-03-02&date_to=2026-03-02")) == 2
    assert rows(client.get("/wallet/?kind=topup&member=mark")) == 0
    assert rows(client.get("/wallet/?kind=hold&member=olivia&date_to=2026-03-01")) == 0


@pytest.mark.parametrize("query, message", [
    ("date_from=2026-13-01", "From: Enter the date as YYYY-MM-DD"),
    ("date_to=yesterday", "To: Enter the date as YYYY-MM-DD"),
    ("date_from=01/03/2026", "From: Enter the date as YYYY-MM-DD"),
    ("date_from=2026-03-02&date_to=2026-03-01", "The “From” date is after the “To” date."),
    ("kind=refund", "Kind: Select a valid choice."),
])
def test_bad_filters_are_a_400_with_a_message(member, membership, query, message):
    fibo(membership)
    response = login(member).get(f"/wallet/?{query}")
    html = response.content.decode()
    assert response.status_code == 400
    assert message in html and 'id="filter-errors"' in html
    assert rows(response) == 0 and "Fix the filter above" in html
    assert 'id="figure-balance">$1.00<' in html


def test_bad_filters_on_the_csv_are_a_400(member):
    response = login(member).get("/wallet/export.csv?date_to=2026-02-30")
    assert response.status_code == 400 and "Enter the date as YYYY-MM-DD" in response.content.decode()


# -- pages and htmx ------------------------------------------------------------------


@pytest.fixture
def sixty_entries(team, membership):
    """The credit, 29 jobs (a hold and a settlement each) and one more top-up."""
    for n in range(29):
        settle(fibo(membership, f"job {n}"), "COMPLETED" if n % 2 else "ERROR")
    money.top_up(team, 100_000, reason="top of the pile", key="pile")


def test_pages_hold_fifty_entries_and_keep_the_filters(member, sixty_entries):
    client = login(member)
    first = client.get("/wallet/").content.decode()
    assert first.count('<tr class="entry-') == 50 and "Page 1 of 2" in first
    assert "top of the pile" in first and "test credit" not in first
    assert 'href="/wallet/?page=2"' in first
    second = client.get("/wallet/?page=2")
    assert rows(second) == 10 and "test credit" in second.content.decode()
    filtered = client.get("/wallet/?kind=release&member=mark").content.decode()
    assert filtered.count('<tr class="entry-') == 15 and "Page 1" not in filtered
    holds = client.get("/wallet/?kind=hold&date_from=2026-01-01").content.decode()
    assert holds.count('<tr class="entry-') == 29 and "Page" not in holds
    everything = client.get("/wallet/?member=mark&page=1").content.decode()
    assert 'href="/wallet/?member=mark&amp;page=2"' in everything
    assert 'hx-get="/wallet/?member=mark&amp;page=2"' in everything


def test_a_page_number_out_of_range_shows_the_last_page(member, sixty_entries):
    for page in ("9", "x"):
        response = login(member).get(f"/wallet/?page={page}")
        assert response.status_code == 200 and rows(response) in (10, 50)


def test_htmx_gets_only_the_ledger_partial(member, sixty_entries):
    response = login(member).get("/wallet/?kind=release&page=1", **HX)
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="ledger"') and "<html" not in html and "figure-balance" not in html
    assert rows(response) == 15 and 'id="period-jobs"' in html
    assert 'id="filter-errors" class="filter-errors" role="alert" hx-swap-oob="true"' in html
    assert "HX-Request" in response["Vary"]


def test_htmx_loads_the_next_page_into_the_partial(member, sixty_entries):
    response = login(member).get("/wallet/?page=2", **HX)
    assert "<html" not in response.content.decode() and rows(response) == 10


def test_htmx_with_a_bad_date_gets_the_message_in_the_partial(member):
    response = login(member).get("/wallet/?date_from=tomorrow", **HX)
    html = response.content.decode()
    assert response.status_code == 200  # htmx swaps only 2xx answers
    assert "<html" not in html and "From: Enter the date as YYYY-MM-DD" in html and "hx-swap-oob" in html


def test_htmx_history_restore_gets_the_whole_page(member):
    response = login(member).get("/wallet/?kind=topup", HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true")
    html = response.content.decode()
    assert "<html" in html and rows(response) == 1
    assert html.count('id="filter-errors"') == 1 and "hx-swap-oob" not in html


def test_the_filter_form_works_with_and_without_htmx(member):
    html = login(member).get("/wallet/").content.decode()
    form = html[html.index('<form id="ledger-filter"'):html.index(">", html.index('<form id="ledger-filter"'))]
    assert 'method="get" action="/wallet/"' in form
    assert 'hx-get="/wallet/"' in form and 'hx-target="#ledger"' in form and 'hx-push-url="true"' in form


@pytest.mark.parametrize("jobs, topups", [(2, 0), (29, 1)])  # 5 and 60 entries
def test_the_page_is_a_fixed_number_of_queries(member, team, membership, django_assert_num_queries, jobs, topups):
    for n in range(jobs):
        settle(fibo(membership, f"job {n}"), "COMPLETED" if n % 2 else "ERROR")
    for n in range(topups):
        money.top_up(team, 100_000, reason=f"top-up {n}", key=f"t{n}")
    client = login(member)
    # session, user, membership; team members; entry count and page; job totals and list
    with django_assert_num_queries(8):
        response = client.get("/wallet/")
    assert rows(response) == min(1 + 2 * jobs + topups, 50)
    with django_assert_num_queries(8):
        client.get("/wallet/?member=mark&kind=capture", **HX)


# -- CSV -----------------------------------------------------------------------------


def test_the_csv_has_every_column_and_exact_amounts(member, team, membership):
    job = fibo(membership, "a red balloon")
    settle(job)
    # The studio's date (TIME_ZONE, not this machine's), on either side of a midnight.
    before = timezone.localdate()
    response = login(member).get("/wallet/export.csv")
    days = {before, timezone.localdate()}
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] in {f'attachment; filename="wallet-acme-{day}.csv"' for day in days}
    capture, hold, credit = csv_rows(response)
    assert capture["kind"] == "capture" and capture["member"] == "mark" and capture["actor"] == ""
    assert capture["model"] == "fibo" and capture["job_code"] == str(job.code) and capture["topup_code"] == ""
    assert (capture["amount"], capture["held_change"], capture["balance_after"], capture["held_after"]) == (
        "-0.04", "-0.04", "0.96", "0")
    assert (hold["kind"], hold["actor"], hold["amount"], hold["held_change"], hold["held_after"]) == (
        "hold", "mark", "0", "0.04", "0.04")
    assert credit["kind"] == "topup" and credit["amount"] == "1" and credit["memo"] == "test credit"
    assert credit["topup_code"] == str(team.topups.get().code)
    assert datetime.datetime.fromisoformat(credit["created_at"]).tzinfo is not None


def test_the_csv_keeps_sub_cent_amounts_exact(member, team, membership):
    Price.objects.create(model="fibo", amount=58_000)  # from now on
    settle(fibo(membership))
    money.top_up(team, 1_234_567, reason="=HYPERLINK(\"x\")", key="odd")
    client = login(member)
    odd = csv_rows(client.get("/wallet/export.csv?kind=topup"))[0]  # the newest
    [capture] = csv_rows(client.get("/wallet/export.csv?kind=capture"))
    assert capture["amount"] == "-0.058" and capture["balance_after"] == "0.942"
    assert odd["amount"] == "1.234567" and odd["balance_after"] == "2.176567"
    assert odd["memo"] == "'=HYPERLINK(\"x\")"  # never run as a formula
    assert f"{MINUS}$0.058" in client.get("/wallet/?kind=capture").content.decode()


def test_the_csv_applies_the_same_filters(member, owner, team, membership, three_days):
    client = login(member)
    marks = csv_rows(client.get("/wallet/export.csv?member=mark&date_from=2026-03-02&date_to=2026-03-02"))
    assert [(r["kind"], r["created_at"]) for r in marks] == [("hold", "2026-03-02T23:59:59.999999+00:00")]
    assert len(csv_rows(client.get("/wallet/export.csv?kind=hold"))) == 2
    assert len(csv_rows(client.get("/wallet/export.csv"))) == 4


def test_the_csv_is_one_query_whatever_its_length(member, sixty_entries, django_assert_num_queries):
    response = login(member).get("/wallet/export.csv")
    with django_assert_num_queries(1):
        lines = csv_rows(response)
    assert len(lines) == 60

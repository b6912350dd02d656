"""Spend reports: totals equal to the ledger, the splits, the period, CSV, who may see
which team, and a constant number of queries however much there is to report."""

import json
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime, time, timedelta
from unittest import mock

import pytest
from django.core.management import CommandError, call_command
from django.db import ProgrammingError, connection, transaction
from django.db.models import Sum
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from jobs.actions import start_fibo, start_rmbg_from_url
from jobs.models import Job
from jobs.transitions import apply_status
from studio.accounts.models import Membership, Role, Team
from studio.billing import money
from studio.billing.models import Entry
from studio.reports import charts, queries
from tests.conftest import login, make_user

PROMPT = "a lighthouse at dusk"


def params(prompt=PROMPT):
    return {"prompt": prompt, "aspect_ratio": "1:1", "steps_num": 30, "guidance_scale": "7.5"}


@contextmanager
def booked_on(day):
    """The ledger is append-only, so an entry of an earlier day can only be booked "on"
    that day: its created_at default says noon of `day` meanwhile."""
    when = datetime.combine(day, time(12), tzinfo=UTC)
    with mock.patch.object(Entry._meta.get_field("created_at"), "_get_default", lambda: when):
        yield


def charge(membership, model="fibo", prompt=PROMPT, status="COMPLETED", day=None):
    """A job through the real paths: held at submission, charged when the gateway ends it."""
    with booked_on(day) if day else nullcontext():
        if model == "fibo":
            job = start_fibo(membership, params(prompt))
        else:
            job = start_rmbg_from_url(membership, "https://example.com/cat.png")
        Job.objects.filter(pk=job.pk).update(submission="accepted", request_id=f"x-{job.pk}")
        apply_status(job.pk, status)
    return job


def today():
    return timezone.now().date()


def days_ago(n):
    return today() - timedelta(days=n)


def ledger_spend(**filters):
    """What the ledger says was charged: -Sum(balance_delta) over the captures."""
    return -(Entry.objects.filter(kind="capture", **filters).aggregate(s=Sum("balance_delta"))["s"] or 0)


def owner_membership(team):
    return Membership.objects.select_related("team", "user").get(team=team, role="owner")


def funded_team(slug, credit=10_000_000):
    owner = make_user(f"{slug}-owner")
    team = Team.create_for(owner, slug.title(), slug=slug)
    with override_settings(FIRST_TOPUP_BONUS_MICROS=0):
        money.top_up(team, credit, reason="test credit", key=f"{slug}-credit")
    return team


def team_url(team):
    return f"/reports/teams/{team.code}/"


def member_url(team, user):
    return f"/reports/teams/{team.code}/members/{user.username}/"


@pytest.fixture
def activity(team, membership, owner, outsider):
    """Acme: mark 2 FIBO + 1 RMBG today, a FIBO still held, an ERROR (released), a FIBO
    three days ago; olivia 1 RMBG yesterday. Other (oscar's team): 1 FIBO today."""
    charge(membership, "fibo")
    charge(membership, "fibo", prompt="a red balloon")
    charge(membership, "rmbg")
    start_fibo(membership, params("still held"))
    charge(membership, "fibo", prompt="[error]", status="ERROR")
    charge(membership, "fibo", prompt="three days ago", day=days_ago(3))
    charge(owner_membership(team), "rmbg", day=days_ago(1))
    other = Team.objects.get(slug="other")
    with override_settings(FIRST_TOPUP_BONUS_MICROS=0):
        money.top_up(other, 1_000_000, reason="test credit", key="other-credit")
    charge(owner_membership(other), "fibo", prompt="elsewhere")
    return other


# -- totals and splits ----------------------------------------------------------------


def test_the_overview_total_equals_the_ledger(staff, activity):
    response = login(staff).get("/reports/")
    assert response.status_code == 200
    total = response.context["total"]
    assert total == {"amount": ledger_spend(), "jobs": 6}
    assert total["amount"] == 4 * 40_000 + 2 * 18_000
    assert "<strong>$0.196</strong> charged for 6 jobs" in response.content.decode()


def test_the_overview_splits_spend_by_team_model_and_day(staff, team, activity):
    context = login(staff).get("/reports/").context
    teams = {row["team__slug"]: (row["jobs"], row["amount"]) for row in context["teams"]}
    assert teams == {"acme": (5, 156_000), "other": (1, 40_000)}
    assert teams["acme"][1] == ledger_spend(team=team)
    models = [(m["model"], m["jobs"], m["amount"]) for m in context["models"]]
    assert models == [("fibo", 4, 160_000), ("rmbg", 2, 36_000)]
    by_day = {d["day"]: d["amount"] for d in context["days"] if d["jobs"]}
    assert by_day == {days_ago(3): 40_000, days_ago(1): 18_000, today(): 138_000}
    assert len(context["days"]) == 30 and context["days"][-1]["day"] == today()


def test_a_team_report_splits_spend_by_member_model_and_day(owner, team, activity):
    response = login(owner).get(team_url(team))
    assert response.status_code == 200
    context = response.context
    assert context["total"] == {"amount": ledger_spend(team=team), "jobs": 5}
    assert [(r["member__username"], r["jobs"], r["amount"]) for r in context["members"]] == [
        ("mark", 4, 138_000), ("olivia", 1, 18_000)]
    assert [(m["model"], m["amount"]) for m in context["models"]] == [("fibo", 120_000), ("rmbg", 36_000)]
    today_row = next(d for d in context["days"] if d["day"] == today())
    parts = [(p["model"], p["jobs"], p["amount"]) for p in today_row["parts"]]
    assert parts == [("fibo", 2, 80_000), ("rmbg", 1, 18_000)]
    html = response.content.decode()
    assert f'href="/reports/teams/{team.code}/members/mark/?start=' in html


def test_the_member_page_lists_their_charged_jobs(owner, team, member, activity):
    response = login(owner).get(member_url(team, member))
    assert response.status_code == 200
    entries = list(response.context["entries"])
    assert [(e.model, e.job.params.get("prompt"), e.cost) for e in entries][::-1] == [
        ("fibo", "three days ago", 40_000), ("fibo", PROMPT, 40_000), ("fibo", "a red balloon", 40_000),
        ("rmbg", None, 18_000)]
    assert response.context["total"] == {"amount": ledger_spend(team=team, member=member), "jobs": 4}
    html = response.content.decode()
    assert "background removal" in html and "a red balloon" in html and "COMPLETED" in html and "$0.018" in html
    assert "still held" not in html and "[error]" not in html  # held and released jobs cost nothing


def test_a_failed_job_is_charged_and_listed_as_failed(owner, team, membership, member):
    charge(membership, "fibo", prompt="[fail] it broke", status="FAILED")
    response = login(owner).get(member_url(team, member))
    assert response.context["total"]["amount"] == 40_000
    assert "badge-failed" in response.content.decode()


# -- the period -----------------------------------------------------------------------


def test_an_entry_outside_the_period_is_excluded(staff, activity):
    day = days_ago(3).isoformat()
    context = login(staff).get(f"/reports/?start={day}&end={day}").context
    assert context["total"] == {"amount": 40_000, "jobs": 1}
    assert context["total"]["amount"] == ledger_spend(created_at__date=days_ago(3))


def test_the_end_date_is_included(staff, activity):
    start, end = days_ago(3).isoformat(), days_ago(1).isoformat()
    context = login(staff).get(f"/reports/?start={start}&end={end}").context
    assert context["total"] == {"amount": 58_000, "jobs": 2}
    assert len(context["days"]) == 3


def test_the_default_period_is_the_last_30_days(staff, membership):
    charge(membership, "fibo", day=days_ago(30))
    charge(membership, "rmbg", day=days_ago(29))
    context = login(staff).get("/reports/").context
    assert (context["period"].start, context["period"].end) == (days_ago(29), today())
    assert context["total"] == {"amount": 18_000, "jobs": 1}


@pytest.mark.parametrize("query, message", [
    ("start=2026-13-01", "Start: Write dates as YYYY-MM-DD"),
    ("end=yesterday", "End: Write dates as YYYY-MM-DD"),
    ("start=24/11/2026", "Start: Write dates as YYYY-MM-DD"),
    ("start=2026-11-02&end=2026-11-01", "The start date is after the end date."),
    ("start=2024-01-01&end=2026-01-01", "A report covers at most 366 days."),
])
def test_a_bad_period_is_a_400_with_a_message(staff, team, member, query, message):
    for url in ("/reports/", team_url(team), member_url(team, member)):
        response = login(staff).get(f"{url}?{query}")
        assert response.status_code == 400
        assert message in response.content.decode()
    csv = login(staff).get(f"/reports/?{query}&format=csv")
    assert csv.status_code == 400 and csv["Content-Type"].startswith("text/html")


# -- CSV ------------------------------------------------------------------------------


def csv_of(response):
    assert response.status_code == 200 and response["Content-Type"] == "text/csv; charset=utf-8"
    return b"".join(response.streaming_content).decode()


def test_the_overview_csv_is_exact(staff, team, activity):
    start, end = days_ago(3), today()
    response = login(staff).get(f"/reports/?start={start}&end={end}&format=csv")
    assert response["Content-Disposition"] == f'attachment; filename="spend-all-teams-{start}-{end}.csv"'
    other = activity
    assert csv_of(response) == (
        "date,team,team_code,model,jobs,amount_usd\r\n"
        f"{days_ago(3)},Acme,{team.code},fibo,1,0.04\r\n"
        f"{days_ago(1)},Acme,{team.code},rmbg,1,0.018\r\n"
        f"{today()},Acme,{team.code},fibo,2,0.08\r\n"
        f"{today()},Acme,{team.code},rmbg,1,0.018\r\n"
        f"{today()},Other,{other.code},fibo,1,0.04\r\n"
    )


def test_a_team_csv_is_exact(owner, team, activity):
    response = login(owner).get(f"{team_url(team)}?start={days_ago(1)}&end={today()}&format=csv")
    assert csv_of(response) == (
        "date,member,model,jobs,amount_usd\r\n"
        f"{days_ago(1)},olivia,rmbg,1,0.018\r\n"
        f"{today()},mark,fibo,2,0.08\r\n"
        f"{today()},mark,rmbg,1,0.018\r\n"
    )


def test_a_member_csv_lists_each_job_and_defuses_formulas(owner, team, membership, member):
    fibo = charge(membership, "fibo", prompt='=HYPERLINK("http://evil")', day=days_ago(2))
    rmbg = charge(membership, "rmbg")
    response = login(owner).get(f"{member_url(team, member)}?format=csv")
    rows = csv_of(response).splitlines()
    captures = {e.job_id: e for e in Entry.objects.filter(kind="capture")}
    assert rows == [
        "charged_at,job,model,prompt,status,amount_usd",
        f"{captures[rmbg.pk].created_at.isoformat()},{rmbg.code},rmbg,background removal,COMPLETED,0.018",
        f'{captures[fibo.pk].created_at.isoformat()},{fibo.code},fibo,"\'=HYPERLINK(""http://evil"")",COMPLETED,0.04',
    ]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="server-side cursors are PostgreSQL's")
@pytest.mark.parametrize("disabled, open_cursors", [(False, 1), (True, 0)])
def test_a_csv_streams_through_a_server_side_cursor_unless_they_are_off(staff, activity, disabled, open_cursors):
    """DATABASE_SERVER_SIDE_CURSORS=false (DISABLE_SERVER_SIDE_CURSORS) for a pooler in
    transaction mode: the rows then come in one result instead of a cursor left open."""
    with mock.patch.dict(connection.settings_dict, DISABLE_SERVER_SIDE_CURSORS=disabled):
        lines = iter(login(staff).get(f"/reports/?start={today()}&end={today()}&format=csv").streaming_content)
        assert next(lines).startswith(b"date,") and next(lines).startswith(str(today()).encode())
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_cursors")
            assert cursor.fetchone()[0] == open_cursors
        assert len(list(lines)) == 2  # Acme's RMBG and Other's FIBO of today


# -- who sees what --------------------------------------------------------------------


def test_reports_need_a_login(team, member):
    for url in ("/reports/", team_url(team), member_url(team, member)):
        response = Client(HTTP_HOST="127.0.0.1").get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_staff_see_every_team(staff, team, activity):
    client = login(staff)
    slugs = {row["team__slug"] for row in client.get("/reports/").context["teams"]}
    assert slugs == {"acme", "other"}
    assert client.get(team_url(activity)).status_code == 200
    oscar = Team.objects.get(slug="other").memberships.get().user
    assert client.get(member_url(activity, oscar)).status_code == 200
    assert 'href="/reports/?start=' in client.get(team_url(team)).content.decode()  # back to all teams


def test_an_owner_sees_their_team_and_its_members(owner, team, member, activity):
    client = login(owner)
    assert client.get(team_url(team)).status_code == 200
    assert client.get(member_url(team, member)).status_code == 200
    assert client.get(member_url(team, owner)).status_code == 200
    assert "All teams" not in client.get(team_url(team)).content.decode()


def test_the_overview_sends_an_owner_to_their_team_report(owner, team):
    response = login(owner).get("/reports/?start=2026-01-01&end=2026-01-31")
    assert response.status_code == 302
    assert response["Location"] == f"/reports/teams/{team.code}/?start=2026-01-01&end=2026-01-31"


@pytest.mark.parametrize("who", ["member", "viewer"])
def test_the_overview_is_a_404_for_anyone_but_staff_and_owners(request, team, who):
    user = request.getfixturevalue(who)
    assert login(user).get("/reports/").status_code == 404


@pytest.mark.parametrize("who", ["member", "viewer", "outsider"])
def test_team_and_member_pages_are_a_404_for_others(request, team, member, who):
    client = login(request.getfixturevalue(who))
    assert client.get(team_url(team)).status_code == 404
    assert client.get(member_url(team, member)).status_code == 404
    assert client.get(f"{team_url(team)}?format=csv").status_code == 404


def test_an_owner_of_another_team_cannot_see_acme(outsider, team, member):
    client = login(outsider)
    assert client.get(team_url(team)).status_code == 404
    assert client.get(member_url(team, member)).status_code == 404


def test_a_user_outside_the_team_is_a_404_on_its_member_pages(owner, team, outsider, staff):
    assert login(owner).get(member_url(team, outsider)).status_code == 404
    assert login(staff).get(member_url(team, outsider)).status_code == 404
    assert login(staff).get(f"{team_url(team)}members/nobody/").status_code == 404


def test_an_unknown_team_is_a_404(staff, db):
    assert login(staff).get("/reports/teams/00000000-0000-0000-0000-000000000000/").status_code == 404


def test_reports_only_answer_get(staff, team):
    assert login(staff).post("/reports/").status_code == 405
    assert login(staff).post(team_url(team)).status_code == 405


# -- the chart ------------------------------------------------------------------------


def test_the_chart_is_inline_svg_stacked_by_model_without_style_attributes(staff, team, activity):
    html = login(staff).get(f"/reports/?start={days_ago(6)}&end={today()}").content.decode()
    assert '<svg class="chart"' in html and "<script" not in html.split("</header>", 1)[1]
    assert "style=" not in html
    today_bar = html.split(f"{today():%a} {today().day} {today():%b}: ", 1)[1]
    assert today_bar.startswith("Bria FIBO $0.12 (3 jobs)")
    assert f"{today():%a} {today().day} {today():%b}: Bria RMBG 2.0 $0.018 (1 job)" in html
    assert html.count('<rect class="s0"') == 2 and html.count('<rect class="s1"') == 2


@pytest.mark.parametrize("highest, scale", [
    (0, (100_000, 25_000)), (1, (1, 1)), (138_000, (150_000, 50_000)), (196_000, (200_000, 50_000)),
    (3_004_000, (4_000_000, 1_000_000)), (40_000, (40_000, 10_000)),
])
def test_the_chart_axis_covers_the_busiest_day_in_round_steps(highest, scale):
    assert charts.nice_scale(highest) == scale


# -- queries --------------------------------------------------------------------------

# On PostgreSQL a report runs in a transaction of its own that asks for plans made for
# its own period (studio.reports.queries.planned_per_run): one statement, and here, where
# every test already runs inside a transaction, a savepoint and its release besides.
PLANNING = 1 + 2 if connection.vendor == "postgresql" else 0



def grow(n_teams, jobs_each):
    for n in range(n_teams):
        team = funded_team(f"grow{n}")
        for _ in range(jobs_each):
            charge(owner_membership(team), "fibo")
            charge(owner_membership(team), "rmbg", day=days_ago(n + 1))


@pytest.mark.parametrize("n_teams, jobs_each", [(0, 0), (4, 3)])
def test_the_overview_runs_a_constant_number_of_queries(staff, team, membership, n_teams, jobs_each,
                                                          django_assert_num_queries):
    charge(membership, "fibo")
    grow(n_teams, jobs_each)
    client = login(staff)
    # session, user, current team; by team and model, by day and model
    with django_assert_num_queries(5 + PLANNING):
        response = client.get("/reports/")
    assert len(response.context["teams"]) == 1 + n_teams


@pytest.mark.parametrize("n_members, jobs_each", [(0, 0), (4, 3)])
def test_a_team_page_runs_a_constant_number_of_queries(staff, team, membership, n_members, jobs_each,
                                                         django_assert_num_queries):
    charge(membership, "fibo")
    for n in range(n_members):
        user = make_user(f"extra{n}")
        extra = Membership.objects.create(team=team, user=user, role=Role.MEMBER)
        for _ in range(jobs_each):
            charge(extra, "rmbg", day=days_ago(n))
    grow(2, jobs_each)
    client = login(staff)
    # session, user, current team; the team; by member and model, by day and model
    with django_assert_num_queries(6 + PLANNING):
        response = client.get(team_url(team))
    assert len(response.context["members"]) == 1 + n_members


def test_the_member_page_runs_a_constant_number_of_queries(owner, team, membership, member,
                                                             django_assert_num_queries):
    for n in range(5):
        charge(membership, "fibo" if n % 2 else "rmbg", day=days_ago(n))
    client = login(owner)
    # session, user, current team; the team; the member; by model; the jobs
    with django_assert_num_queries(7 + PLANNING):
        client.get(member_url(team, member))


def plan_cache_mode():
    with connection.cursor() as cursor:
        cursor.execute("SHOW plan_cache_mode")
        return cursor.fetchone()[0]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="plans are PostgreSQL's")
@pytest.mark.django_db(transaction=True)  # the report's transaction is the outermost, as in production
def test_report_queries_are_planned_for_their_own_period_and_only_inside_the_report(staff, activity):
    """With prepared statements, PostgreSQL may reuse one generic plan for a report it
    has run a few times; a report asks for plans made for its own parameters, with a
    setting that ends with the report's transaction, so a pooler in transaction mode
    never passes it on to another client's transaction on the same connection."""
    in_force = []

    def note_the_setting(execute, sql, params, many, context):
        if "billing_entry" in sql:
            context["cursor"].cursor.execute("SHOW plan_cache_mode")  # the raw cursor: not captured
            in_force.append(context["cursor"].cursor.fetchone()[0])
        return execute(sql, params, many, context)

    with queries.planned_per_run():
        assert plan_cache_mode() == "force_custom_plan"
    assert plan_cache_mode() == "auto"
    client = login(staff)
    with CaptureQueriesContext(connection) as captured, connection.execute_wrapper(note_the_setting):
        assert client.get("/reports/").status_code == 200
    assert in_force and set(in_force) == {"force_custom_plan"}
    assert plan_cache_mode() == "auto" and not connection.in_atomic_block
    # Set once, transaction-local; nothing puts it back afterwards.
    settings_statements = [query["sql"] for query in captured if "plan_cache_mode" in query["sql"]]
    assert settings_statements == ["SELECT set_config('plan_cache_mode', 'force_custom_plan', true)"]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="planner statistics are PostgreSQL's")
def test_postgresql_knows_how_many_days_the_ledger_spans(team):
    """Without statistics on the reports' day expression PostgreSQL guesses 200 groups
    or more, and at a million entries sorts them on disk instead of hashing them."""
    start = datetime(2026, 3, 1, 12, tzinfo=UTC)
    Entry.objects.bulk_create(
        Entry(team=team, kind="capture", model=("fibo", "rmbg")[n % 2], balance_delta=-1, balance_after=0, held_after=0,
              idempotency_key=f"stats-{n}", created_at=start + timedelta(days=n % 3, minutes=n))
        for n in range(600)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE billing_entry")
    rows = queries._by_day(Entry.objects.spend()).values("day", "model").annotate(**queries._totals())
    estimate = json.loads(rows.explain(format="json"))[0]["Plan"]["Plan Rows"]
    assert estimate <= 12  # 3 days x 2 models


@pytest.mark.skipif(connection.vendor != "postgresql", reason="plans are PostgreSQL's")
def test_a_failing_report_query_raises_its_own_error(db):
    with (pytest.raises(ProgrammingError, match="no_such_table"), transaction.atomic(), queries.planned_per_run(),
          connection.cursor() as cursor):
        cursor.execute("SELECT * FROM no_such_table")


@pytest.mark.skipif(connection.vendor != "postgresql", reason="plans are PostgreSQL's")
def test_a_failing_report_leaves_the_connection_as_it_was(transactional_db):
    with pytest.raises(ProgrammingError, match="no_such_table"), queries.planned_per_run():
        assert plan_cache_mode() == "force_custom_plan"
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM no_such_table")
    assert plan_cache_mode() == "auto" and not connection.in_atomic_block


# -- the benchmark --------------------------------------------------------------------


def test_the_benchmark_refuses_any_database_but_a_bench_one_on_postgresql(db):
    with pytest.raises(CommandError, match="only on a PostgreSQL database whose name starts with 'bench'"):
        call_command("bench_spend_report", "--entries", "10")
    assert not Entry.objects.exists()

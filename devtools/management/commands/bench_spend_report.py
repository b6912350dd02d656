"""Time the spend reports at scale:

    python manage.py bench_spend_report [--entries 1000000] [--teams 50] [--members 5]

Seeds teams, members and wallets, then the ledger in one INSERT … SELECT from
generate_series, VACUUM ANALYZEs, and times the overview and one team report: the query
functions the views use, and the pages themselves rendered through the test client as
a staff user. Prints one JSON object on stdout (progress goes to stderr).

The ledger is append-only (a trigger refuses DELETE), so seeded rows can never be
removed: it runs only on a PostgreSQL database whose name starts with "bench", a
scratch database made for it (`make bench-report` creates and drops one).
"""

import json
import statistics
import time
import uuid
from datetime import timedelta

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext

from studio.accounts.models import Membership, Role, Team
from studio.billing.models import Wallet
from studio.reports import queries
from studio.reports.forms import default_period
from studio.reports.queries import Period
from studio.reports.views import spend_by_model_and_day

SEED_DAYS = 90

# Mostly captures, with holds, releases and top-ups mixed in; FIBO two jobs in three.
# balance_after/held_after are not a running balance: no report reads them.
SEED_SQL = """
INSERT INTO billing_entry (team_id, actor_id, member_id, kind, model, job_id, topup_id, balance_delta,
                           held_delta, balance_after, held_after, idempotency_key, memo, created_at)
SELECT team_id,
       CASE WHEN kind = 'hold' THEN member_id END,
       CASE WHEN kind <> 'topup' THEN member_id END,
       kind,
       CASE WHEN kind = 'topup' THEN '' ELSE model END,
       NULL, NULL,
       CASE kind WHEN 'topup' THEN 10000000 WHEN 'capture' THEN -price ELSE 0 END,
       CASE kind WHEN 'hold' THEN price WHEN 'topup' THEN 0 ELSE -price END,
       0, 0,
       %(key)s || i,
       '',
       created_at
FROM (
    SELECT i,
           (%(teams)s::bigint[])[1 + i %% %(n_teams)s] AS team_id,
           (%(members)s::bigint[])[1 + (i %% %(n_teams)s) * %(n_members)s + (i / %(n_teams)s) %% %(n_members)s]
               AS member_id,
           CASE WHEN i %% 50 = 0 THEN 'topup' WHEN i %% 50 = 2 THEN 'release' WHEN i %% 10 = 1 THEN 'hold'
                ELSE 'capture' END AS kind,
           CASE WHEN i %% 3 = 0 THEN 'rmbg' ELSE 'fibo' END AS model,
           CASE WHEN i %% 3 = 0 THEN 18000 ELSE 40000 END AS price,
           now() - make_interval(secs => (i::bigint * 7919) %% %(seconds)s) AS created_at
    FROM generate_series(1, %(entries)s) AS i
) AS seed
"""


class Command(BaseCommand):
    help = "Seed a scratch bench* PostgreSQL database with ledger entries and time the spend reports."

    def add_arguments(self, parser):
        parser.add_argument("--entries", type=int, default=1_000_000)
        parser.add_argument("--teams", type=int, default=50)
        parser.add_argument("--members", type=int, default=5, help="members per team")
        parser.add_argument("--runs", type=int, default=7, help="timed runs of each report")

    def handle(self, *args, entries, teams, members, runs, **options):
        self._refuse_unless_bench_database()
        if min(entries, teams, members, runs) < 1:
            raise CommandError("--entries, --teams, --members and --runs must be at least 1")
        started = time.perf_counter()
        staff, team_list = self._seed(entries, teams, members)
        seed_s = time.perf_counter() - started

        period = default_period()
        team = team_list[0]
        client = Client(HTTP_HOST="127.0.0.1")
        client.force_login(staff)
        whole = Period(period.end - timedelta(days=SEED_DAYS - 1), period.end)
        pages = {"overview": "/reports/", "team": f"/reports/teams/{team.code}/",
                 "overview_90d": f"/reports/?{whole.query}"}
        counts = {name: self._count_queries(client, url) for name, url in pages.items()}
        result = {
            "entries": entries,
            "overview_ms": self._time(lambda: self._get(client, pages["overview"]), runs),
            "team_ms": self._time(lambda: self._get(client, pages["team"]), runs),
            # The whole seeded span (90 days): the heaviest report this data allows.
            "overview_90d_ms": self._time(lambda: self._get(client, pages["overview_90d"]), runs),
            "queries": counts["overview"],
            "team_queries": counts["team"],
            "overview_sql_ms": self._time(lambda: self._overview_queries(period), runs),
            "team_sql_ms": self._time(lambda: self._team_queries(period, team), runs),
            "captures_in_period": queries.total(queries.by_model(queries.spend(period)))["jobs"],
            "period": f"{period.start}..{period.end}",
            "teams": teams,
            "members_per_team": members,
            "seed_s": round(seed_s, 1),
        }
        self.stdout.write(json.dumps(result))

    def _refuse_unless_bench_database(self):
        name = str(connection.settings_dict["NAME"])
        if connection.vendor != "postgresql" or not name.startswith("bench"):
            raise CommandError(
                "The ledger is append-only, so seeded entries can never be deleted: this command runs "
                f"only on a PostgreSQL database whose name starts with 'bench' (this is {connection.vendor} {name!r})."
            )

    @transaction.atomic
    def _seed_people(self, n_teams, n_members):
        run = uuid.uuid4().hex[:8]
        staff = User.objects.create(username=f"bench-{run}-staff", is_staff=True, password="!")
        team_list = Team.objects.bulk_create(
            Team(slug=f"bench-{run}-{t}", name=f"Bench team {t + 1}") for t in range(n_teams)
        )
        users = User.objects.bulk_create(
            User(username=f"bench-{run}-{t}-{m}", password="!") for t in range(n_teams) for m in range(n_members)
        )
        # The first member of each team owns it.
        Membership.objects.bulk_create(
            Membership(team=team_list[n // n_members], user=user, role=Role.MEMBER if n % n_members else Role.OWNER)
            for n, user in enumerate(users)
        )
        Wallet.objects.bulk_create(Wallet(team=team, balance=10**12) for team in team_list)
        return run, staff, team_list, users

    def _seed(self, n_entries, n_teams, n_members):
        run, staff, team_list, users = self._seed_people(n_teams, n_members)
        self.stderr.write(f"seeding {n_entries} ledger entries for {n_teams} teams of {n_members}…")
        with connection.cursor() as cursor:
            cursor.execute(SEED_SQL, {
                "key": f"bench:{run}:", "teams": [t.pk for t in team_list], "members": [u.pk for u in users],
                "n_teams": n_teams, "n_members": n_members, "seconds": SEED_DAYS * 86400, "entries": n_entries,
            })
            # What autovacuum does soon after a bulk load anyway: statistics, hint bits,
            # visibility map; without it the first timed runs pay for that instead.
            cursor.execute("VACUUM ANALYZE")
        return staff, team_list

    @staticmethod
    @queries.planned_per_run()
    def _overview_queries(period):
        entries = queries.spend(period)
        teams, models = queries.by_team_and_by_model(entries)
        return teams, spend_by_model_and_day(period, entries, models)

    @staticmethod
    @queries.planned_per_run()
    def _team_queries(period, team):
        entries = queries.spend(period, team=team)
        members, models = queries.by_member_and_by_model(entries)
        return members, spend_by_model_and_day(period, entries, models)

    @staticmethod
    def _get(client, url):
        response = client.get(url)
        if response.status_code != 200:
            raise CommandError(f"{url} answered {response.status_code}")
        return response

    def _count_queries(self, client, url):
        with CaptureQueriesContext(connection) as captured:
            self._get(client, url)  # also warms the caches before the timed runs
        return len(captured)

    @staticmethod
    def _time(work, runs):
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            work()
            times.append((time.perf_counter() - started) * 1000)
        return {"p50": round(statistics.median(times), 1), "max": round(max(times), 1)}

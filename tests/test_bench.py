"""`make bench`'s own code: the yardstick views exist only on the bench's server, and the
raw-SQL one does a submission's writes (hold, job, ledger entry, queue task) exactly as
the studio shapes them. The benchmark itself is not run here."""

import json

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django_q.models import OrmQ
from django_q.signing import SignedPackage

from devtools.bench import load, views
from jobs.models import Job
from studio.billing.models import Entry, Wallet
from studio.billing.verify import verify

BODY = json.dumps({"prompt": "a lighthouse"})
ORM_BROKER = {"name": "studio", "orm": "default"}
REDIS_BROKER = {"name": "studio", "redis": "redis://127.0.0.1:6379/15"}


def raw_submit(team, user):
    return Client(HTTP_HOST="127.0.0.1").post(f"/_bench/raw-submit/{team.pk}/{user.pk}/", BODY,
                                              content_type="application/json")


def test_the_bench_views_are_not_mounted_by_default(team, member):
    assert Client(HTTP_HOST="127.0.0.1").get("/_bench/trivial/").status_code == 404
    assert raw_submit(team, member).status_code == 404
    assert not Job.objects.exists()


@pytest.mark.urls("devtools.bench.urls")
def test_the_bench_server_keeps_the_studios_urls(db):
    assert Client(HTTP_HOST="127.0.0.1").get("/healthz").status_code == 200


@pytest.mark.urls("devtools.bench.urls")
def test_the_trivial_view_answers(db):
    response = Client(HTTP_HOST="127.0.0.1").get("/_bench/trivial/")
    assert response.status_code == 200 and response.content == b"ok"


@pytest.mark.urls("devtools.bench.urls")
def test_the_raw_view_holds_creates_the_job_books_the_entry_and_queues_the_task(team, member, settings):
    settings.Q_CLUSTER = ORM_BROKER
    response = raw_submit(team, member)
    assert response.status_code == 202
    job = Job.objects.get()
    assert response.json()["request_id"] == f"bria-fibo-bbq-preview_{job.code}"
    assert (job.team, job.created_by, job.model, job.params, job.price) == (team, member, "fibo",
                                                                             {"prompt": "a lighthouse"}, 40_000)
    assert (job.status, job.submission, job.money) == ("QUEUED", "pending", "held")
    wallet = Wallet.objects.get(team=team)
    assert (wallet.balance, wallet.held) == (1_000_000, 40_000)
    hold = Entry.objects.get(job=job)
    assert (hold.kind, hold.held_delta, hold.balance_after, hold.held_after, hold.actor, hold.member) == (
        "hold", 40_000, 1_000_000, 40_000, member, member)
    task = SignedPackage.loads(OrmQ.objects.get().payload)
    assert (task["func"], task["args"]) == ("jobs.tasks.submit_job", (job.pk,))
    assert verify() == [], "the same shape of rows as the studio's own submissions"


@pytest.mark.urls("devtools.bench.urls")
def test_with_redis_the_raw_view_pushes_the_task_after_the_commit(team, member, settings, monkeypatch,
                                                                   django_capture_on_commit_callbacks):
    settings.Q_CLUSTER = REDIS_BROKER
    pushed = []
    monkeypatch.setattr(views, "redis_client", lambda: type("Redis", (), {"rpush": lambda _, *a: pushed.append(a)})())
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert raw_submit(team, member).status_code == 202
    assert pushed == [] and not OrmQ.objects.exists()
    callbacks[0]()
    (list_key, package), = pushed
    assert list_key == "django_q:studio:q"
    assert SignedPackage.loads(package)["args"] == (Job.objects.get().pk,)


@pytest.mark.urls("devtools.bench.urls")
def test_the_raw_view_never_overdraws(team, member, settings):
    settings.Q_CLUSTER = ORM_BROKER
    assert [raw_submit(team, member).status_code for _ in range(26)] == [202] * 25 + [402]
    assert Job.objects.count() == Entry.objects.filter(kind="hold").count() == OrmQ.objects.count() == 25
    assert Wallet.objects.get(team=team).available == 0


def test_the_bench_runs_only_on_a_scratch_bench_database(db):
    with pytest.raises(CommandError, match="starts with 'bench'"):
        call_command("bench")


def test_percentiles_are_nearest_rank():
    values = list(range(1, 101))
    assert (load.percentile(values, 50), load.percentile(values, 99), load.percentile(values, 100)) == (50, 99, 100)
    assert load.percentile([7], 99) == 7 and load.percentile([], 50) is None


def test_windows_add_up_to_one_figure():
    first, second = load.Outcome(seconds=2.0), load.Outcome(seconds=3.0)
    first.latencies, second.latencies = [0.01] * 10, [0.02] * 20
    first.statuses.update({202: 10})
    second.statuses.update({202: 19, 500: 1})
    first.merge(second)
    summary = first.summary()
    assert (summary["rps"], summary["requests"], summary["errors"], summary["valid"]) == (6.0, 30, 1, False)
    assert summary["statuses"] == {"202": 29, "500": 1}

"""The studio under faults, with its real processes: a django-q2 worker killed with
SIGKILL mid-submit and mid-download, a gateway that refuses connections and then answers
5xx for a while, and a storm of duplicated, shuffled, concurrent webhooks. Each time: no
job lost, none submitted twice, money booked exactly once, and the ledger verifies.
(PostgreSQL restarting under load: tests/test_database_restart.py.)"""

import random
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from django_q.tasks import async_task

from devtools.emulator.server import EmulatorServer
from jobs.models import Job, WebhookDelivery
from studio.billing.models import Entry, Wallet
from studio.billing.verify import verify
from tests.conftest import login
from tests.stack import Process, bound_socket, database_env, kill_cluster, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

FIBO = {"prompt": "a lighthouse in a storm", "aspect_ratio": "1:1", "seed": "7", "steps_num": "30",
        "guidance_scale": "7.5"}
HX = {"HTTP_HX_REQUEST": "true"}
TERMINAL = ("COMPLETED", "FAILED", "ERROR")


def submit(client, count=1):
    for _ in range(count):
        assert client.post("/studio/fibo/", FIBO, **HX).status_code == 200
    return list(Job.objects.order_by("created_at"))


def all_finished(jobs):
    return all(j.status in TERMINAL and not j.is_live for j in Job.objects.filter(pk__in=[j.pk for j in jobs]))


def worker_env(settings, gateway_url):
    return {**database_env(), "MEDIA_ROOT": str(settings.MEDIA_ROOT), "PIXAZO_BASE_URL": gateway_url,
            "PIXAZO_API_KEY": "test-key", "PIXAZO_BACKOFF_MS": "10", "PUBLIC_BASE_URL": settings.PUBLIC_BASE_URL,
            "PIXAZO_ALLOW_HTTP_WEBHOOKS": "true", "Q_WORKERS": "2"}


def assert_paid_once(team, jobs, emulator_requests):
    """Each job COMPLETED, reached the gateway once, captured once; the ledger verifies."""
    jobs = list(Job.objects.filter(pk__in=[j.pk for j in jobs]))
    assert [(j.status, j.money) for j in jobs] == [("COMPLETED", "charged")] * len(jobs), [j.error for j in jobs]
    submitted = sorted(r["request_id"] for r in emulator_requests)
    assert submitted == sorted(j.request_id for j in jobs), "each job reached the gateway exactly once"
    for job in jobs:
        assert Entry.objects.filter(job=job, kind="capture").count() == 1
        assert len(job.outputs) == 1
    wallet = Wallet.objects.get(team=team)
    assert (wallet.balance, wallet.held) == (1_000_000 - 40_000 * len(jobs), 0)
    assert verify() == []


def test_worker_killed_during_submission(member, team, worker, emulator, settings, tmp_path):
    # The gateway stalls on the POST; the worker dies holding the claim, the answer is
    # lost. The studio must not submit again: the job's webhook brings its id home.
    emulator.faults(submit=["hang:3"])
    [job] = submit(login(member))
    wait_until(lambda: Job.objects.get(pk=job.pk).submission == "submitting", what="the job claimed")
    wait_until(lambda: not emulator.pending_faults()["submit"], what="the POST stalled at the gateway")
    kill_cluster(worker)
    restarted = Process.manage("qcluster-restarted", ["qcluster"], worker_env(settings, emulator.url), tmp_path)
    try:
        wait_until(lambda: all_finished([job]), seconds=45, what=lambda: f"job finished\n{restarted.output()}")
        assert_paid_once(team, [job], emulator.requests())
    finally:
        restarted.stop()


def test_worker_killed_during_output_download(member, team, worker, emulator, settings, tmp_path):
    # The gateway has the image; the worker dies while copying it. After the restart the
    # sweeper's safety-net poll (due, here, at once) fetches it again, and charges once.
    # Both worker processes get stuck: a repeated COMPLETED webhook wakes a second refresh.
    emulator.faults(media=["hang:5", "hang:5"])
    [job] = submit(login(member))
    wait_until(lambda: WebhookDelivery.objects.filter(job=job, status="COMPLETED").exists(), seconds=30,
               what="the COMPLETED webhook")
    # The refresh it woke is stuck in the download for 5 s from the moment the first hang
    # is taken; the second may be taken by the repeat's refresh, or after the restart.
    wait_until(lambda: len(emulator.pending_faults()["media"]) < 2, what="a download stalled at the gateway")
    assert Job.objects.get(pk=job.pk).status != "COMPLETED", "the card waits for the image"
    kill_cluster(worker)
    restarted = Process.manage("qcluster-restarted", ["qcluster"], worker_env(settings, emulator.url), tmp_path)
    try:
        # Time passes: its safety-net poll is due (30 s after submission with webhooks on).
        Job.objects.filter(pk=job.pk).update(next_poll_at=Job.objects.get(pk=job.pk).created_at)
        async_task("jobs.tasks.sweep")  # the minute schedule's tick
        wait_until(lambda: all_finished([job]), seconds=45, what=lambda: f"job finished\n{restarted.output()}")
        assert_paid_once(team, [job], emulator.requests())
    finally:
        restarted.stop()


def test_gateway_unreachable_then_failing_then_back(member, team, live_server, settings, tmp_path):
    # Nothing listens on the gateway's port at first (connection refused); then it comes
    # up answering 503 for a while; then it works. The jobs wait, held, and finish.
    settings.PUBLIC_BASE_URL = live_server.url
    refusing = bound_socket()  # the port stays ours, and refusing, until the gateway takes it
    port = refusing.getsockname()[1]
    worker = Process.manage("qcluster", ["qcluster"], worker_env(settings, f"http://127.0.0.1:{port}"), tmp_path)
    gateway = None
    try:
        jobs = submit(login(member), 3)
        wait_until(lambda: all(j.submit_attempts >= 1 for j in Job.objects.all()), seconds=30,
                   what=lambda: f"every job refused at least once\n{worker.output()}")
        assert set(Job.objects.values_list("status", "money")) == {("QUEUED", "held")}
        assert "will try again" in Job.objects.first().error
        refusing.close()
        gateway = EmulatorServer(port=port, api_key="test-key", delay=0.3, allow_http_webhooks=True,
                                 duplicate_rate=0.0)
        gateway.add_faults({"submit": [503] * 6})
        gateway.start()
        wait_until(lambda: all_finished(jobs), seconds=60, what=lambda: f"jobs finished\n{worker.output()}")
        assert_paid_once(team, jobs, gateway.requests())
        assert all(j.error == "" for j in Job.objects.all())
    finally:
        refusing.close()
        worker.stop()
        if gateway:
            gateway.stop()


def test_webhook_storm_books_money_exactly_once(member, team, worker, emulator, settings):
    # Every callback the gateway could send (QUEUED, PROCESSING, COMPLETED) for every
    # job, three times over, shuffled (PROCESSING after COMPLETED included), sent
    # concurrently while the jobs are still running. Webhooks are hints: money moves
    # only on what the status endpoint confirms, once.
    emulator.configure(delay=2.0, duplicate_rate=1.0)
    jobs = submit(login(member), 5)
    wait_until(lambda: len(emulator.requests()) == 5, seconds=20, what="all jobs at the gateway")
    deliveries = []
    for request in emulator.requests():
        url = request["headers"]["X-Webhook-URL"]
        for status in ("QUEUED", "PROCESSING", "COMPLETED"):
            body = {"request_id": request["request_id"], "status": status, "model_id": request["model_id"]}
            deliveries += [(url, body)] * 3
    random.Random(7).shuffle(deliveries)
    with httpx.Client(timeout=10) as client, ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda d: client.post(d[0], json=d[1]).status_code, deliveries))
    assert all(200 <= code < 300 for code in answers), answers
    wait_until(lambda: all_finished(jobs), seconds=45, what=lambda: f"jobs finished\n{worker.output()}")
    assert_paid_once(team, jobs, emulator.requests())
    # Replayed again after the end, in reverse: nothing moves.
    with httpx.Client(timeout=10) as client:
        assert all(client.post(url, json=body).status_code < 300 for url, body in reversed(deliveries))
    time.sleep(1)
    assert_paid_once(team, jobs, emulator.requests())
    assert Entry.objects.filter(kind="capture").count() == 5

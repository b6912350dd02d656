"""/metrics (studio/ops/metrics.py): who may read it, and that its figures follow what
happens — jobs run, holds refused, webhooks received and deduplicated, the gateway's
answers and the webhook→COMPLETED latency counted by the worker — including across
processes: two gunicorn workers' counts add up, and a worker machine serves its own."""

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
import pytest
from django.test import Client
from django.utils import timezone
from django_q.brokers import get_broker
from prometheus_client.parser import text_string_to_metric_families

from jobs.actions import start_fibo
from jobs.models import Job, hash_token
from jobs.transitions import apply_status
from studio.accounts.models import Membership
from studio.ops import metrics
from tests.conftest import login
from tests.stack import database_env, free_port, wait_until
from tests.test_health import gunicorn

TOKEN = "metrics-token-for-the-tests-0123"
PARAMS = {"prompt": "a lighthouse", "aspect_ratio": "1:1", "steps_num": 30, "guidance_scale": "7.5"}
FIBO_FORM = {"prompt": "a kite at dusk", "aspect_ratio": "1:1", "seed": "7", "steps_num": "30", "guidance_scale": "7.5"}
HX = {"HTTP_HX_REQUEST": "true"}
WEBHOOK_TOKEN = "w" * 43


@pytest.fixture(autouse=True)
def fresh_tallies(monkeypatch, settings):
    """The state figures' per-process tallies start empty (rows of earlier tests are
    gone), and the metrics are on."""
    monkeypatch.setattr(metrics, "JOBS", metrics.Tally(metrics._count_jobs))
    monkeypatch.setattr(metrics, "SPEND", metrics.Tally(metrics._spend_micros))
    settings.METRICS_TOKEN = TOKEN


def parse(text):
    """{(sample name, ((label, value), …)): value}."""
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def figure(figures, name, **labels):
    return figures.get((name, tuple(sorted(labels.items()))), 0.0)


def scrape():
    response = Client(HTTP_HOST="127.0.0.1").get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain; version=")
    return parse(response.content.decode())


# -- who may read them ----------------------------------------------------------------


def test_metrics_are_off_while_no_token_is_set(db, settings):
    settings.METRICS_TOKEN = ""
    assert Client(HTTP_HOST="127.0.0.1").get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404


@pytest.mark.parametrize("authorization, status", [
    (None, 401), ("", 401), ("Bearer", 401), ("Bearer ", 401), (f"Basic {TOKEN}", 401),
    ("Bearer wrong-token", 403), (f"Bearer {TOKEN}x", 403), (f"Bearer {TOKEN[:-1]}", 403),
])
def test_metrics_refuse_a_missing_or_wrong_token(db, authorization, status):
    headers = {} if authorization is None else {"HTTP_AUTHORIZATION": authorization}
    response = Client(HTTP_HOST="127.0.0.1").get("/metrics", **headers)
    assert response.status_code == status and b"studio_" not in response.content
    assert (response.get("WWW-Authenticate") == "Bearer") == (status == 401)


def test_metrics_answer_the_bearer_token(db):
    figures = scrape()
    assert figure(figures, "studio_state_up") == 1
    assert figure(figures, "studio_jobs", model="fibo", status="QUEUED") == 0


def test_production_warns_when_each_process_would_count_alone(settings, monkeypatch):
    settings.DEBUG = False
    monkeypatch.setattr(metrics, "MULTIPROC_DIR", "")
    [warning] = metrics.counted_per_process(None)
    assert warning.id == "ops.W001" and "PROMETHEUS_MULTIPROC_DIR" in warning.msg
    monkeypatch.setattr(metrics, "MULTIPROC_DIR", "/run/studio-metrics")
    assert metrics.counted_per_process(None) == []


# -- what they count --------------------------------------------------------------------


def test_refused_holds_are_counted_by_reason(member, outsider, team):
    before = scrape()
    # The outsider's team has an empty wallet; the member has a cap below one image.
    assert "wallet has only" in login(outsider).post("/studio/fibo/", FIBO_FORM, **HX).content.decode()
    Membership.objects.filter(user=member).update(monthly_cap=1)
    assert "spend cap" in login(member).post("/studio/fibo/", FIBO_FORM, **HX).content.decode()
    after = scrape()
    for reason in ("insufficient_funds", "cap"):
        assert figure(after, "studio_holds_refused_total", reason=reason) == figure(
            before, "studio_holds_refused_total", reason=reason) + 1, reason
    assert not Job.objects.exists()


def test_webhooks_received_and_deduplicated_are_counted(membership):
    job = accepted_job(membership, "bria-fibo-bbq-preview_m1")
    before = scrape()
    for status in ("PROCESSING", "PROCESSING", "PROCESSING", "COMPLETED"):
        assert post_webhook(Client(HTTP_HOST="127.0.0.1"), job, status).status_code == 200
    assert post_webhook(Client(HTTP_HOST="127.0.0.1"), job, "COMPLETED", token="forged").status_code == 404
    get_broker().purge_queue()  # the refreshes the webhooks woke
    after = scrape()
    delta = {(status, name): figure(after, f"studio_webhooks_{name}_total", status=status)
             - figure(before, f"studio_webhooks_{name}_total", status=status)
             for status in ("PROCESSING", "COMPLETED") for name in ("received", "deduplicated")}
    assert delta == {("PROCESSING", "received"): 3, ("PROCESSING", "deduplicated"): 2,
                     ("COMPLETED", "received"): 1, ("COMPLETED", "deduplicated"): 0}


def accepted_job(membership, request_id):
    """A job the gateway took, whose webhook URL carries WEBHOOK_TOKEN."""
    job = start_fibo(membership, PARAMS)
    Job.objects.filter(pk=job.pk).update(submission="accepted", request_id=request_id,
                                         webhook_token_hash=hash_token(WEBHOOK_TOKEN))
    return Job.objects.get(pk=job.pk)


def webhook(job, status):
    return json.dumps({"request_id": job.request_id, "status": status, "model_id": "bria-fibo-bbq-preview"})


def post_webhook(client, job, status, token=WEBHOOK_TOKEN):
    return client.post(f"/hooks/pixazo/{job.code}/{token}/", webhook(job, status), content_type="application/json")


def books(figures):
    return {key: value for key, value in figures.items() if key[0] in ("studio_jobs", "studio_spend_dollars_total")}


def test_state_figures_follow_the_jobs_the_ledger_and_the_queue(membership):
    get_broker().purge_queue()
    jobs = [accepted_job(membership, f"bria-fibo-bbq-preview_s{n}") for n in range(4)]
    apply_status(jobs[0].pk, "COMPLETED")
    apply_status(jobs[1].pk, "FAILED", error="no")
    apply_status(jobs[2].pk, "PROCESSING")
    figures = scrape()
    expected = {"QUEUED": 1, "PROCESSING": 1, "COMPLETED": 1, "FAILED": 1, "ERROR": 0}
    assert {s: figure(figures, "studio_jobs", model="fibo", status=s) for s in expected} == expected
    assert figure(figures, "studio_spend_dollars_total", model="fibo") == pytest.approx(0.08)
    assert figure(figures, "studio_spend_dollars_total", model="rmbg") == 0
    if get_broker().__class__.__name__ == "ORM":  # with Redis the submits are sent on commit
        assert figure(figures, "studio_queue_depth") == 4

    # Rows old enough to have settled are tallied once and kept; later scrapes count
    # only the newer rows, and still come to the same figures.
    Job.objects.filter(pk__in=[j.pk for j in jobs]).update(created_at=timezone.now() - timedelta(minutes=10))
    assert books(scrape()) == books(figures)
    assert metrics.JOBS.settled_upto == jobs[2].pk - 1, "settled: the jobs below the oldest one in flight"
    apply_status(jobs[2].pk, "COMPLETED")
    apply_status(jobs[3].pk, "ERROR", error="gone")
    figures = scrape()
    assert metrics.JOBS.settled_upto == jobs[3].pk
    expected = {"QUEUED": 0, "PROCESSING": 0, "COMPLETED": 2, "FAILED": 1, "ERROR": 1}
    assert {s: figure(figures, "studio_jobs", model="fibo", status=s) for s in expected} == expected
    assert figure(figures, "studio_spend_dollars_total", model="fibo") == pytest.approx(0.12)
    get_broker().purge_queue()


# -- across processes ---------------------------------------------------------------------


def dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.mark.django_db(transaction=True)
def test_the_counts_of_two_web_processes_add_up(membership, tmp_path):
    job = accepted_job(membership, "bria-fibo-bbq-preview_m2")
    directory = tmp_path / "prometheus"
    directory.mkdir()
    gone = directory / f"counter_{dead_pid()}.db"
    gone.write_bytes(b"")  # left by a process that died before this start
    web = gunicorn(tmp_path, workers=2, **database_env(), PROMETHEUS_MULTIPROC_DIR=str(directory), METRICS_TOKEN=TOKEN)
    url, sent = web.url, 0
    try:
        assert not gone.exists(), "the master removed the dead process's file"

        def counting_processes():
            nonlocal sent
            with httpx.Client(base_url=url, timeout=10) as client, ThreadPoolExecutor(8) as pool:
                answers = list(pool.map(lambda _: client.post(
                    f"/hooks/pixazo/{job.code}/{WEBHOOK_TOKEN}/", content=webhook(job, "PROCESSING"),
                    headers={"Content-Type": "application/json"}).status_code, range(8)))
            assert answers == [200] * 8
            sent += 8
            return len(list(directory.glob("counter_*.db"))) >= 2

        wait_until(counting_processes, seconds=30, interval=0, what="both web processes counting webhooks")
        for _ in range(6):  # whichever process answers the scrape, it adds both up
            response = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
            figures = parse(response.text)
            assert figure(figures, "studio_webhooks_received_total", status="PROCESSING") == sent
            assert figure(figures, "studio_webhooks_deduplicated_total", status="PROCESSING") == sent - 1
            assert figure(figures, "studio_jobs", model="fibo", status="QUEUED") == 1
    finally:
        web.stop()
        get_broker().purge_queue()


@pytest.fixture
def worker_env(tmp_path):
    """The worker of the test below counts into a directory of its own and serves it."""
    return {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "worker-prometheus"), "METRICS_TOKEN": TOKEN,
            "WORKER_METRICS_PORT": str(free_port())}


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_the_worker_counts_gateway_answers_and_the_webhook_latency(member, team, worker, worker_env):
    worker_url = f"http://127.0.0.1:{worker_env['WORKER_METRICS_PORT']}/metrics"
    worker.wait_for_http(worker_url)
    assert httpx.get(worker_url, timeout=5).status_code == 401
    assert httpx.get(worker_url, headers={"Authorization": "Bearer nope"}, timeout=5).status_code == 403
    before = scrape()

    assert login(member).post("/studio/fibo/", FIBO_FORM, **HX).status_code == 200
    job = Job.objects.get()

    def worker_figures():
        response = httpx.get(worker_url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
        return parse(response.text)

    # Observed just after the COMPLETED commit, in one of the cluster's worker processes.
    figures = wait_until(lambda: (f := worker_figures()) and figure(f, "studio_webhook_to_completed_seconds_count") == 1
                         and f, seconds=45, what=lambda: f"the latency observed\n{worker.log_tail()}")
    job.refresh_from_db()
    assert (job.status, job.outputs_fetched) == ("COMPLETED", True)
    latency = figure(figures, "studio_webhook_to_completed_seconds_sum")
    assert 0 < latency < 5
    assert figure(figures, "studio_gateway_responses_total", code="202") == 1, "one submit"
    assert figure(figures, "studio_gateway_responses_total", code="200") >= 2, "a status check and the download"
    assert ("studio_jobs", (("model", "fibo"), ("status", "COMPLETED"))) not in figures, "state comes from the web"
    assert not [name for name, _ in figures if name.startswith("studio_webhooks_")], "webhooks reach the web"

    # The web (here the live server): the webhooks it received, each twice (the
    # emulator duplicates every delivery), and the state from the database.
    def webhooks(name, figures):
        return sum(figure(figures, f"studio_webhooks_{name}_total", status=s) - figure(
            before, f"studio_webhooks_{name}_total", status=s) for s in ("PROCESSING", "COMPLETED"))

    after = wait_until(lambda: (f := scrape()) and webhooks("deduplicated", f) >= 2 and f, seconds=15,
                       what="both webhooks' duplicates")
    assert webhooks("received", after) >= 4
    assert figure(after, "studio_jobs", model="fibo", status="COMPLETED") == 1
    assert figure(after, "studio_spend_dollars_total", model="fibo") == pytest.approx(0.04)
    assert os.listdir(worker_env["PROMETHEUS_MULTIPROC_DIR"])

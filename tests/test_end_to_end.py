"""Both models end to end: the studio's views, a real django-q2 worker process, the real
gateway client, and the emulator over HTTP calling the studio's webhooks back. Runs on
whatever database the suite uses (PostgreSQL in CI)."""

import io

import pytest
from PIL import Image

from jobs.models import Job, WebhookDelivery
from studio.billing.models import Entry, Wallet
from tests.conftest import login
from tests.stack import Process, database_env, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

FIBO = {"prompt": "a red balloon over green hills", "aspect_ratio": "4:3", "seed": "42", "steps_num": "30",
        "guidance_scale": "7.5"}
HX = {"HTTP_HX_REQUEST": "true"}


def finished(job):
    job.refresh_from_db()
    return job.status in ("COMPLETED", "FAILED", "ERROR") and not job.is_live


def test_generate_then_remove_background_end_to_end(member, team, worker, emulator):
    client = login(member)

    assert client.post("/studio/fibo/", FIBO, **HX).status_code == 200
    fibo = Job.objects.get(model="fibo")
    wait_until(lambda: finished(fibo), seconds=45, what=lambda: f"FIBO job finished\n{worker.output()}")
    assert (fibo.status, fibo.money) == ("COMPLETED", "charged"), fibo.error
    [image] = fibo.outputs
    assert (image.width, image.height) == (1024, 768)

    # The webhook woke the job: it was received, duplicated by the emulator, absorbed. (A
    # refresh woken by a PROCESSING callback may finish the job before the COMPLETED one
    # lands: wait for that delivery and its copy rather than expect them yet.)
    completed = WebhookDelivery.objects.filter(job=fibo, status="COMPLETED", duplicates__gte=1)
    wait_until(completed.exists, seconds=10, what="the COMPLETED webhook and its duplicate")
    delivery = completed.get()
    latency = (fibo.completed_at - delivery.received_at).total_seconds()
    assert latency < 1.5, f"COMPLETED {latency:.2f} s after the webhook arrived"

    # The page's single poll shows the finished card.
    page = client.get("/studio/cards/", {"live": [f"{fibo.code}:0"]}, **HX).content.decode()
    assert "COMPLETED" in page and f"/assets/{image.code}/thumbnail/" in page

    assert client.post(f"/jobs/{fibo.code}/remove-background/", **HX).status_code == 200
    rmbg = Job.objects.get(model="rmbg")
    wait_until(lambda: finished(rmbg), seconds=45, what=lambda: f"RMBG job finished\n{worker.output()}")
    assert (rmbg.status, rmbg.money) == ("COMPLETED", "charged"), rmbg.error
    cutout = Image.open(io.BytesIO(rmbg.outputs[0].file.read()))
    assert cutout.mode == "RGBA"
    assert cutout.getpixel((2, 2))[3] == 0, "the background is transparent"
    assert cutout.getpixel((cutout.width // 2, cutout.height // 2))[3] == 255, "the subject is kept"

    wallet = Wallet.objects.get(team=team)
    assert (wallet.balance, wallet.held) == (1_000_000 - 58_000, 0)
    assert Entry.objects.filter(kind="capture").count() == 2
    submitted = [r["request_id"] for r in emulator.requests()]
    assert sorted(submitted) == sorted([fibo.request_id, rmbg.request_id]), "each job reached the gateway once"
    assert "database is locked" not in worker.output()


def restart_worker(worker, emulator, settings, **env):
    worker.stop()
    env = {**database_env(), "MEDIA_ROOT": str(settings.MEDIA_ROOT), "PIXAZO_BASE_URL": emulator.url,
           "PIXAZO_API_KEY": "test-key", "PUBLIC_BASE_URL": settings.PUBLIC_BASE_URL,
           "PIXAZO_ALLOW_HTTP_WEBHOOKS": "true", "Q_WORKERS": "2", **env}
    return Process.manage("qcluster-2", ["qcluster"], env, worker.log_path.parent)


def test_without_webhooks_polling_finishes_the_job(member, team, worker, emulator, settings):
    settings.PIXAZO_WEBHOOKS = False
    poller = restart_worker(worker, emulator, settings, PIXAZO_WEBHOOKS="false")
    try:
        login(member).post("/studio/fibo/", {**FIBO, "prompt": "polled [fail]"}, **HX)
        job = Job.objects.get()
        wait_until(lambda: finished(job), seconds=45, what=lambda: f"polled job finished\n{poller.output()}")
        assert (job.status, job.money) == ("FAILED", "charged")
        assert not WebhookDelivery.objects.exists()
        assert emulator.requests()[0]["headers"] == {}
    finally:
        poller.stop()


def test_terminal_mode_webhooks_finish_the_job(member, team, worker, emulator, settings):
    second = restart_worker(worker, emulator, settings, PIXAZO_WEBHOOK_MODE="terminal")
    try:
        login(member).post("/studio/fibo/", {**FIBO, "prompt": "terminal [error]"}, **HX)
        job = Job.objects.get()
        wait_until(lambda: finished(job), seconds=45, what=lambda: f"job finished\n{second.output()}")
        assert (job.status, job.money) == ("ERROR", "released") and job.error
        assert list(WebhookDelivery.objects.values_list("status", flat=True)) == ["ERROR"]
        assert emulator.requests()[0]["headers"]["X-Webhook-Mode"] == "terminal"
        assert Wallet.objects.get(team=team).balance == 1_000_000
    finally:
        second.stop()

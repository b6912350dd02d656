"""Email against real SMTP servers (tests/smtp.py): what reaches the server when the
queue runs, a submission that never waits on a slow or dead mail server, retries and
giving up, the login, and the settings."""

import json
import re
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.models import Schedule
from django_q.scheduler import scheduler

from jobs.models import Job
from studio.billing.models import Entry, Wallet
from studio.mail import TASK, queue_email, send_email
from tests.conftest import login
from tests.smtp import DeadSMTPServer, SMTPServer, point_settings_at, run_queued_email
from tests.stack import wait_until
from tests.test_settings import start

FIBO = {"prompt": "a red balloon over green hills", "aspect_ratio": "4:3", "seed": "42", "steps_num": "30",
        "guidance_scale": "7.5"}
HX = {"HTTP_HX_REQUEST": "true"}
STAFF = "staff@example.com"


@pytest.fixture
def worker_env(request):
    """The worker sends to the SMTP server the test uses, and tells staff."""
    name = "silent_smtp_server" if "silent_smtp_server" in request.fixturenames else "smtp_server"
    return {**request.getfixturevalue(name).env(), "EMAIL_TIMEOUT": "2", "STAFF_ALERT_EMAILS": STAFF}


@pytest.fixture
def warn_below_99_cents(team):
    """The next FIBO job ($1.00 → $0.96 available) crosses the team's warning level."""
    team.low_balance_threshold = 990_000
    team.save()


def e2e(test):
    """A test with a real worker: marked e2e, on committed data the worker can see."""
    return pytest.mark.e2e(pytest.mark.django_db(transaction=True)(test))


def finished(job):
    job.refresh_from_db()
    return job.status in ("COMPLETED", "FAILED", "ERROR") and not job.is_live


def retries():
    return list(Schedule.objects.filter(func=TASK).order_by("next_run"))


# -- what reaches the server -----------------------------------------------------------


@e2e
def test_the_low_balance_email_reaches_the_owners_through_the_worker(
        member, owner, warn_below_99_cents, smtp_server, worker, settings):
    assert login(member).post("/studio/fibo/", FIBO, **HX).status_code == 200
    [received] = smtp_server.wait_for(1)
    assert received.rcpt_tos == [owner.email] and received.message["To"] == owner.email
    assert received.message["From"] == settings.DEFAULT_FROM_EMAIL == "Bria Studio <studio@localhost>"
    assert received.subject == "Bria Studio: Acme is below $0.99"
    assert received.body.startswith("The wallet of Acme has $0.96 available, below the $0.99 you asked to be")


def test_the_invitation_email_reaches_the_invitee_when_the_queue_runs(
        team, owner, smtp_server, empty_queue, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = login(owner).post("/team/invitations/", {"role": "member", "days": "7", "email": "new@example.com"})
    assert response.status_code == 200 and smtp_server.messages() == []
    [url] = re.findall(r"http://127\.0\.0\.1:8000/invitations/[A-Za-z0-9_-]{43}/", response.content.decode())
    assert run_queued_email() == ["sent"]
    [received] = smtp_server.wait_for(1)
    assert received.rcpt_tos == ["new@example.com"]
    assert received.subject == "olivia invited you to Acme on Bria Studio"
    assert "as a member" in received.body and url in received.body


@e2e
def test_staff_hear_by_email_when_the_gateway_account_is_out_of_balance(member, smtp_server, worker, emulator):
    emulator.faults(submit=[402])
    assert login(member).post("/studio/fibo/", FIBO, **HX).status_code == 200
    [received] = smtp_server.wait_for(1)
    job = Job.objects.get()
    assert received.rcpt_tos == [STAFF] and received.message["From"] == "Bria Studio <studio@localhost>"
    assert received.subject == "[Bria Studio] Pixazo gateway account is out of balance"
    assert f"Job {job.code} was refused" in received.body


# -- a slow or dead mail server changes nothing for the person submitting -------------


def test_a_submission_answers_at_once_while_the_mail_server_hangs(
        member, team, warn_below_99_cents, silent_smtp_server, settings, empty_queue,
        django_capture_on_commit_callbacks):
    settings.EMAIL_TIMEOUT = 20  # a send inside the request would wait this long
    started = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True):
        response = login(member).post("/studio/fibo/", FIBO, **HX)
    elapsed = time.monotonic() - started
    assert response.status_code == 200 and elapsed < 10
    assert silent_smtp_server.connections == 0, "the request opened no SMTP connection"
    job = Job.objects.get()
    assert (job.status, job.money) == ("QUEUED", "held")
    assert Entry.objects.get(job=job).kind == "hold" and Wallet.objects.get(team=team).held == 40_000
    # The worker's attempt waits out EMAIL_TIMEOUT, then is offered again later.
    settings.EMAIL_TIMEOUT = 1
    assert run_queued_email() == ["failed"]
    assert silent_smtp_server.connections == 1 and len(retries()) == 1


def test_a_submission_succeeds_while_the_mail_server_is_down(
        member, team, warn_below_99_cents, settings, empty_queue, django_capture_on_commit_callbacks):
    point_settings_at(settings, DeadSMTPServer())
    with django_capture_on_commit_callbacks(execute=True):
        response = login(member).post("/studio/fibo/", FIBO, **HX)
    assert response.status_code == 200
    job = Job.objects.get()
    assert (job.status, job.money) == ("QUEUED", "held") and Wallet.objects.get(team=team).held == 40_000
    assert run_queued_email() == ["failed"] and len(retries()) == 1


@e2e
def test_a_hanging_mail_server_holds_up_no_job(member, team, warn_below_99_cents, silent_smtp_server, worker, emulator):
    emulator.faults(submit=[402])  # the first job: out of balance, and staff are emailed
    client = login(member)
    assert client.post("/studio/fibo/", FIBO, **HX).status_code == 200
    refused = Job.objects.get()
    wait_until(lambda: finished(refused), seconds=30, what=lambda: f"refused job finished\n{worker.output()}")
    assert (refused.status, refused.money) == ("ERROR", "released")
    assert client.post("/studio/fibo/", FIBO, **HX).status_code == 200
    job = Job.objects.exclude(pk=refused.pk).get()
    wait_until(lambda: finished(job), seconds=45, what=lambda: f"job finished\n{worker.output()}")
    assert (job.status, job.money) == ("COMPLETED", "charged"), job.error
    # Three emails (two low-balance warnings, one staff alert) each waited out the
    # worker's EMAIL_TIMEOUT and wait for their second attempt.
    wait_until(lambda: len(retries()) == 3, seconds=30, what=lambda: f"three retries scheduled\n{worker.output()}")
    assert silent_smtp_server.connections == 3


# -- retries and giving up ----------------------------------------------------------


@pytest.mark.django_db(transaction=True)  # django-q2's scheduler manages its own connection
def test_a_failed_send_is_offered_again_by_the_scheduler_and_arrives_once_the_server_is_back(
        settings, smtp_server, empty_queue, caplog):
    point_settings_at(settings, DeadSMTPServer())
    queue_email("Your wallet", "The secret body", ["a@example.com", "b@example.com"])
    assert run_queued_email() == ["failed"]
    [retry] = retries()
    assert retry.schedule_type == Schedule.ONCE
    assert timedelta(seconds=50) < retry.next_run - timezone.now() <= timedelta(seconds=60)
    [warning] = [r for r in caplog.records if r.name == "studio.mail"]
    assert warning.levelname == "WARNING" and warning.getMessage().startswith(
        "email 'Your wallet' to a@example.com, b@example.com not sent (attempt 1): ")
    assert "secret body" not in caplog.text

    point_settings_at(settings, smtp_server)  # the server is back
    Schedule.objects.filter(pk=retry.pk).update(next_run=timezone.now() - timedelta(seconds=1))
    scheduler(broker=get_broker())
    assert retries() == []
    assert run_queued_email() == ["sent"]
    [received] = smtp_server.wait_for(1)
    assert received.rcpt_tos == ["a@example.com", "b@example.com"] and received.subject == "Your wallet"
    assert received.body.strip() == "The secret body"


def test_a_failed_attempt_run_twice_schedules_its_retry_once(db, settings):
    point_settings_at(settings, DeadSMTPServer())
    for _ in range(2):
        assert send_email("S", "B", ["a@example.com"], "studio@localhost", key="k1", attempt=2) == "failed"
    [retry] = retries()
    assert retry.name == "email k1 attempt 3"
    assert timedelta(minutes=4) < retry.next_run - timezone.now() <= timedelta(minutes=5)


def test_the_fifth_failed_attempt_gives_up_and_says_so(db, settings, caplog):
    point_settings_at(settings, DeadSMTPServer())
    result = send_email("Alert", "The secret body", ["a@example.com"], "studio@localhost", key="k", attempt=5)
    assert result == "given up"
    assert retries() == []
    [error] = [r for r in caplog.records if r.name == "studio.mail"]
    assert error.levelname == "ERROR"
    assert error.getMessage().startswith("email 'Alert' to a@example.com not sent after 5 attempts, given up: ")
    assert "secret body" not in caplog.text


# -- the login ------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # there is no TLS here
def test_the_studio_logs_in_with_its_credentials_and_never_logs_the_password(db, settings, caplog):
    with SMTPServer(login=("studio", "the-right-password")) as server:
        point_settings_at(settings, server)
        settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD = "studio", "a-wrong-password"
        assert send_email("S", "B", ["a@example.com"], "studio@localhost", key="k1") == "failed"
        assert server.refused_logins and server.messages() == []
        settings.EMAIL_HOST_PASSWORD = "the-right-password"
        assert send_email("S", "B", ["a@example.com"], "studio@localhost", key="k2") == "sent"
        server.wait_for(1)
    ours = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("mail.log"))  # not aiosmtpd's
    assert "not sent" in ours and "a-wrong-password" not in ours and "the-right-password" not in ours


# -- settings ---------------------------------------------------------------------------

SHOW = ("import django, json; django.setup(); from django.conf import settings as s; print(json.dumps(["
        "s.EMAIL_BACKEND, s.EMAIL_HOST, s.EMAIL_PORT, s.EMAIL_USE_TLS, s.EMAIL_USE_SSL, s.EMAIL_HOST_USER, "
        "s.EMAIL_TIMEOUT, s.DEFAULT_FROM_EMAIL, s.SERVER_EMAIL, s.ADMINS]))")
CONSOLE = "django.core.mail.backends.console.EmailBackend"
SMTP = "django.core.mail.backends.smtp.EmailBackend"


def email_settings(tmp_path, **env):
    result = start(SHOW, STUDIO_VAR_DIR=str(tmp_path), **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_without_an_smtp_host_email_goes_to_the_console(tmp_path):
    assert email_settings(tmp_path) == [
        CONSOLE, "localhost", 25, False, False, "", 10, "Bria Studio <studio@localhost>",
        "Bria Studio <studio@localhost>", []]


def test_an_smtp_host_selects_the_smtp_backend_with_djangos_names(tmp_path):
    assert email_settings(
        tmp_path, EMAIL_HOST="smtp.example.com", EMAIL_USE_TLS="true", EMAIL_HOST_USER="studio",
        EMAIL_HOST_PASSWORD="pw", EMAIL_TIMEOUT="5", DEFAULT_FROM_EMAIL="Studio <studio@example.com>",
        SERVER_EMAIL="ops@example.com", STAFF_ALERT_EMAILS="a@example.com, b@example.com",
    ) == [SMTP, "smtp.example.com", 587, True, False, "studio", 5, "Studio <studio@example.com>", "ops@example.com",
          [["Studio staff", "a@example.com"], ["Studio staff", "b@example.com"]]]


@pytest.mark.parametrize("env, port", [({"EMAIL_USE_SSL": "true"}, 465), ({"EMAIL_PORT": "2525"}, 2525)])
def test_the_port_follows_the_tls_mode_unless_given(tmp_path, env, port):
    assert email_settings(tmp_path, EMAIL_HOST="smtp.example.com", **env)[2] == port


def test_email_backend_still_overrides(tmp_path):
    backend = "django.core.mail.backends.filebased.EmailBackend"
    assert email_settings(tmp_path, EMAIL_HOST="smtp.example.com", EMAIL_BACKEND=backend)[0] == backend


@pytest.mark.parametrize("name, value", [
    ("EMAIL_PORT", "smtp"),
    ("EMAIL_PORT", "0"),
    ("EMAIL_PORT", "70000"),
    ("EMAIL_USE_TLS", "maybe"),
    ("EMAIL_USE_SSL", "sometimes"),
    ("EMAIL_TIMEOUT", "ten"),
    ("EMAIL_TIMEOUT", "0"),
    ("EMAIL_TIMEOUT", "60"),
    ("DEFAULT_FROM_EMAIL", "studio"),
    ("SERVER_EMAIL", "Ops <ops@>"),
    ("STAFF_ALERT_EMAILS", "ops@example.com, nobody"),
])
def test_a_bad_email_setting_stops_start_up_naming_it(tmp_path, name, value):
    result = start(STUDIO_VAR_DIR=str(tmp_path), EMAIL_HOST="smtp.example.com", **{name: value})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and name in result.stderr.splitlines()[-1]


def test_tls_and_ssl_together_stop_start_up_naming_both(tmp_path):
    result = start(STUDIO_VAR_DIR=str(tmp_path), EMAIL_USE_TLS="true", EMAIL_USE_SSL="true")
    last = result.stderr.splitlines()[-1]
    assert result.returncode != 0 and "EMAIL_USE_TLS" in last and "EMAIL_USE_SSL" in last

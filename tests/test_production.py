"""Production is a tested path: the README's deployment, run as an operator would.

The Procfile's commands with `DJANGO_DEBUG=false`: the release step on a fresh
PostgreSQL database, the first staff user as the README creates it, gunicorn with two
web processes behind a TLS proxy, two `qcluster` processes on Redis, media in an S3
bucket, mail through an SMTP server. A new team's first day runs in Chromium against it:
sign up, a staff top-up, FIBO, RMBG, a gallery, its share link opened logged out, and
the spend report's $0.058. Then the images are objects in the bucket, the low-balance
email reached the SMTP server, `/metrics` answers, `/readyz` turns 503 while Redis is
down and 200 after, and `verify_ledger` finds no drift.
"""

import json
import re

import pytest
from django.db import connection
from playwright.sync_api import expect

from tests import totp
from tests.production import (
    NGINX,
    NGINX_CONF,
    Production,
    base_environment,
    drop_database,
    fresh_database,
    missing_tools,
    procfile,
    self_signed_certificate,
    timed,
)
from tests.s3 import S3Server
from tests.smtp import SMTPServer
from tests.stack import ROOT, Process, bound_socket, wait_until
from tests.test_browser import SCREENSHOTS, browser  # noqa: F401  (the fixture)
from tests.test_browser_journey import DESKTOP, PHONE, wait_for_card, watch_console

pytestmark = [pytest.mark.e2e]

PASSWORD = "a-long-secret-phrase-9"
STAFF_PASSWORD = "staff-secret-phrase-42"


@pytest.fixture
def production(tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("the production test runs on PostgreSQL (set DATABASE_URL, as .ci/run does)")
    if missing := missing_tools():
        pytest.skip(f"not installed: {', '.join(missing)} (.ci/run installs them)")
    # Four ports held at once, so no two of them can be the same.
    sockets = [bound_socket() for _ in range(4)]
    web_port, proxy_port, emulator_port, redis_port = (sock.getsockname()[1] for sock in sockets)
    for sock in sockets:
        sock.close()
    public_url = f"https://127.0.0.1:{proxy_port}"
    cert, key = self_signed_certificate(tmp_path)
    (tmp_path / "prometheus").mkdir()
    admin_url = _admin_url()
    name, database_url = fresh_database(admin_url)
    stack = Production(tmp=tmp_path, database_url=database_url, redis_port=redis_port, url=public_url,
                       env=base_environment(tmp_path, database_url, redis_port, emulator_port, public_url))
    s3, smtp = S3Server(tmp_path), SMTPServer()
    try:
        s3.start()
        smtp.start()
        stack.s3, stack.smtp, stack.bucket = s3, smtp, s3.create_bucket()
        stack.env.update(s3.env(stack.bucket), **smtp.env(), DEFAULT_FROM_EMAIL="studio@studio.example")
        stack.start_redis()
        # The gateway: it calls the studio's webhooks over HTTPS and trusts its certificate.
        emulator = stack.start("emulator", f"python manage.py pixazo_emulator --port {emulator_port} --delay 2",
                               env={"SSL_CERT_FILE": str(cert), "DJANGO_DEBUG": "true"})
        emulator.wait_for_http(f"http://127.0.0.1:{emulator_port}/_emulator/requests")
        commands = procfile()
        with timed(stack.timings, "release_s"):
            release = stack.start("release", commands["release"])
            assert release.popen.wait(300) == 0, release.output()
        code, output = stack.manage("createsuperuser", "createsuperuser", "--no-input", "--username", "stan",
                                    "--email", "stan@studio.example", env={"DJANGO_SUPERUSER_PASSWORD": STAFF_PASSWORD})
        assert code == 0, output
        web = stack.start("web", commands["web"], env={"PORT": str(web_port), "WEB_CONCURRENCY": "2"})
        for number in (1, 2):
            stack.start(f"worker-{number}", commands["worker"])
        (tmp_path / "nginx.conf").write_text(NGINX_CONF.format(tmp=tmp_path, port=proxy_port, upstream=web_port,
                                                                 cert=cert, key=key, root=ROOT))
        stack.children["proxy"] = proxy = Process("proxy", [NGINX, "-c", str(tmp_path / "nginx.conf"),
                                                             "-p", str(tmp_path)], {}, tmp_path)
        web.wait_for_http(f"http://127.0.0.1:{web_port}/healthz")
        proxy.wait_for_http(f"http://127.0.0.1:{proxy_port}/", seconds=20)
        yield stack
    finally:
        stack.stop()
        smtp.stop()
        s3.stop()
        drop_database(admin_url, name)


def _admin_url():
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return f"postgres://{db['USER'] or 'postgres'}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/postgres"


def test_a_new_teams_first_day_in_production(production, browser):  # noqa: F811
    stack, errors, failed = production, [], []
    context = browser.new_context(viewport=DESKTOP, ignore_https_errors=True)
    page = context.new_page()
    watch(page, errors, failed)

    with timed(stack.timings, "sign_up_s"):
        page.goto(f"{stack.url}/accounts/signup/")
        page.fill("#id_username", "nina")
        page.fill("#id_email", "nina@example.com")
        page.fill("#id_password1", PASSWORD)
        page.fill("#id_password2", PASSWORD)
        page.fill("#id_team_name", "Nina's Studio")
        page.click("form button[type=submit]")
        page.wait_for_url("**/studio/")
        expect(page.locator("#wallet")).to_contain_text("$0.00")

    # The first staff user, created as the README says, tops the team up in the admin.
    staff_context = browser.new_context(viewport=DESKTOP, ignore_https_errors=True)
    admin = staff_context.new_page()
    watch(admin, errors, failed)
    admin.goto(f"{stack.url}/admin/")  # the admin sends staff to the studio's login, and back
    admin.fill("#id_login", "stan")
    admin.fill("#id_password", STAFF_PASSWORD)
    admin.click("form button[type=submit]")
    # Staff set up two-factor authentication before the admin opens (the password first, again).
    admin.wait_for_url("**/accounts/reauthenticate/**")
    admin.fill("#id_password", STAFF_PASSWORD)
    admin.click("form button[type=submit]")
    admin.wait_for_url("**/accounts/2fa/totp/activate/")
    admin.fill("#id_code", totp.code(admin.inner_text("#authenticator-secret")))
    admin.click("form button[type=submit]")
    admin.wait_for_url("**/accounts/2fa/recovery-codes/")
    admin.goto(f"{stack.url}/admin/")
    (team_pk,), = stack.sql("SELECT t.id FROM accounts_team t JOIN accounts_membership m ON m.team_id = t.id "
                            "JOIN auth_user u ON u.id = m.user_id WHERE u.username = 'nina'")
    admin.goto(f"{stack.url}/admin/accounts/team/{team_pk}/topup/")
    admin.fill("#id_amount", "10")
    admin.fill("#id_reason", "Invoice 2026-118")
    admin.click("input[type=submit][value='Top up']")
    admin.wait_for_load_state()

    # The owner asks to be warned below $14.99: the first job's hold drops through it.
    page.goto(f"{stack.url}/team/")
    page.fill("#id_low_balance_threshold", "14.99")
    page.locator("form.team-threshold button[type=submit]").click()
    expect(page.locator("body")).to_contain_text("Low-balance warning: $14.99")

    with timed(stack.timings, "fibo_to_completed_s"):
        page.goto(f"{stack.url}/studio/")
        expect(page.locator("#wallet")).to_contain_text("$15.00")  # $10 and the $5 first top-up bonus
        page.fill("#id_prompt", "A paper boat on a calm lake at dawn")
        page.click("#fibo-form button[type=submit]")
        card = page.locator("#cards article").first
        card.wait_for()
        assert wait_for_card(card, "… → COMPLETED", seconds=90)[-1] == "COMPLETED"
        _expect_image_loaded(card.locator("img").first)

    with timed(stack.timings, "rmbg_to_completed_s"):
        card.get_by_role("button", name="Remove background").click()
        expect(page.locator("#cards article")).to_have_count(2)
        cutout = page.locator("#cards article").first
        assert wait_for_card(cutout, "… → COMPLETED", seconds=90)[-1] == "COMPLETED"
        expect(page.locator("#wallet")).to_contain_text("$14.942", timeout=20_000)

    page.goto(f"{stack.url}/galleries/")
    page.fill("#id_title", "Boats")
    page.get_by_role("button", name="Create gallery").click()
    page.wait_for_url(re.compile(r".*/galleries/[0-9a-f-]+/$"))
    for count in (1, 2):
        page.locator("form[action$='/items/'] button", has_text="Add").first.click()
        expect(page.locator("#items img")).to_have_count(count)
    page.get_by_role("button", name="Create link").click()
    share_url = page.locator("#new-link-url").input_value()

    stranger = browser.new_context(viewport=PHONE, ignore_https_errors=True)
    shared = stranger.new_page()
    watch(shared, errors, failed)
    shared.goto(share_url)
    expect(shared.locator("img")).to_have_count(2)
    for image in shared.locator("img").all():
        _expect_image_loaded(image)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shared.screenshot(path=str(SCREENSHOTS / "production-share-phone.png"), full_page=True)
    stranger.close()

    admin.goto(f"{stack.url}/reports/")
    expect(admin.locator("tr", has_text="Nina's Studio")).to_contain_text("$0.058")
    admin.screenshot(path=str(SCREENSHOTS / "production-reports-desktop.png"), full_page=True)
    context.close()
    staff_context.close()
    assert errors == [], (errors, failed)

    _the_images_are_objects_in_the_bucket(stack)
    _the_low_balance_email_reached_the_smtp_server(stack)
    _metrics_answer_to_the_token(stack)
    _the_proxys_request_id_follows_the_jobs_into_the_workers(stack)
    _readiness_follows_redis(stack)
    code, output = stack.manage("verify_ledger", "verify_ledger")
    assert code == 0, output
    print("production figures:", json.dumps(stack.timings))


def watch(page, errors, failed):
    """Console errors, and every request the browser gave up on (with why), to explain them."""
    watch_console(page, errors)
    page.on("requestfailed", lambda request: failed.append(f"{request.method} {request.url}: {request.failure}"))


def _expect_image_loaded(image):
    """The <img> decoded a picture: the bucket's presigned redirect worked in the browser
    (and the Content-Security-Policy let it through)."""
    expect(image).to_have_js_property("complete", True)
    assert image.evaluate("img => img.naturalWidth") > 0


def _the_images_are_objects_in_the_bucket(stack):
    names = stack.sql("SELECT file, thumbnail FROM library_asset WHERE role = 'output'")
    assert len(names) == 2
    keys = stack.s3.keys(stack.bucket)
    for file, thumbnail in names:
        assert file in keys and thumbnail in keys, (file, thumbnail, keys)


def _the_low_balance_email_reached_the_smtp_server(stack):
    """Nina's two emails: the sign-up's verification link and the low-balance warning."""
    def both_to_nina():
        subjects = {m["Subject"] for m in stack.smtp.messages() if "nina@example.com" in m["To"]}
        return subjects if len(subjects) == 2 else None

    subjects = wait_until(both_to_nina, seconds=30, what=lambda: "both emails at the SMTP server; the workers logged:\n"
                          + stack.children["worker-1"].log_tail(40) + stack.children["worker-2"].log_tail(40))
    assert any("below $14.99" in subject for subject in subjects), subjects
    assert "[Bria Studio] Please Confirm Your Email Address" in subjects


def _metrics_answer_to_the_token(stack):
    with stack.http() as http:
        assert http.get("/metrics").status_code in (401, 403)
        assert http.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code in (401, 403)
        response = http.get("/metrics", headers={"Authorization": f"Bearer {stack.env['METRICS_TOKEN']}"})
    assert response.status_code == 200
    text = response.text
    assert re.search(r'studio_jobs\{model="fibo",status="COMPLETED"\} 1(\.0)?\b', text), text[:3000]
    assert re.search(r'studio_jobs\{model="rmbg",status="COMPLETED"\} 1(\.0)?\b', text), text[:3000]
    assert re.search(r'studio_spend_dollars_total\{model="fibo"\} 0\.04\b', text), text[:3000]
    assert re.search(r'studio_spend_dollars_total\{model="rmbg"\} 0\.018\b', text), text[:3000]
    assert re.search(r'studio_gateway_responses_total\{code="202"\} [1-9]', text), text[:3000]


def _the_proxys_request_id_follows_the_jobs_into_the_workers(stack):
    """nginx names each request ($request_id, 32 hex digits); the worker's JSON lines for
    the tasks those requests queued carry the same id."""
    lines = [json.loads(line) for name in ("worker-1", "worker-2")
             for line in stack.children[name].output().splitlines() if line.startswith("{")]
    assert lines and all(set(line) >= {"time", "level", "logger", "message", "request_id"} for line in lines)
    assert any(re.fullmatch(r"[0-9a-f]{32}", line["request_id"] or "") for line in lines), lines[-5:]


def _readiness_follows_redis(stack):
    def ready():
        with stack.http() as http:
            return http.get("/readyz")

    assert ready().status_code == 200
    with timed(stack.timings, "readyz_503_after_redis_stop_s"):
        stack.stop_redis()
        down = wait_until(lambda: (r := ready()).status_code == 503 and r, seconds=30, what="/readyz 503")
    assert down.json()["status"] != "ok"
    with timed(stack.timings, "readyz_200_after_redis_start_s"):
        stack.start_redis()
        wait_until(lambda: ready().status_code == 200, seconds=60, what="/readyz 200 again")

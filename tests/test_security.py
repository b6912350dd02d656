"""Security settings and what they protect: `check --deploy` passes in production, HTTPS
and secure cookies there (plain HTTP in development), a Content-Security-Policy without
inline code on every page (and pages that need none), the admin's login, and CSRF on
htmx's requests."""

import os
import re
import subprocess
import sys
from html.parser import HTMLParser

import pytest
from django.contrib.auth.models import User
from django.test import Client, RequestFactory
from playwright.sync_api import expect

from jobs.actions import start_fibo
from jobs.transitions import apply_status
from studio.accounts import throttle
from studio.gallery.models import Gallery, ShareLink
from tests import test_browser, totp
from tests.conftest import login
from tests.stack import ROOT
from tests.test_browser import log_in
from tests.test_gallery import make_asset

browser = test_browser.browser  # the browser tests' fixture: Debian's Chromium through Playwright
PASSWORD = "pw-for-tests-only"
HX = {"HTTP_HX_REQUEST": "true"}
FIBO = {"prompt": "a red balloon", "aspect_ratio": "1:1", "seed": "", "steps_num": "30", "guidance_scale": "7.5"}
PRODUCTION = {
    "DJANGO_DEBUG": "false",
    "DJANGO_SECRET_KEY": "k3Qv9-" * 10,
    "ALLOWED_HOSTS": "studio.example.com",
    "PUBLIC_BASE_URL": "https://studio.example.com",
    "PIXAZO_API_KEY": "x",
    # Production refuses a per-process cache (studio/ops/checks.py); nothing here connects.
    "CACHE_URL": "redis://127.0.0.1:6379/0",
}
# Variables a developer's shell or CI may set that would change what is checked here.
OWN_ENV = ("DATABASE_URL", "REDIS_URL", "CACHE_URL", "DJANGO_DEBUG", "DJANGO_SECRET_KEY", "ALLOWED_HOSTS",
           "PUBLIC_BASE_URL", "PIXAZO_API_KEY", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS",
           "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD", "SESSION_COOKIE_SECURE",
           "SESSION_COOKIE_HTTPONLY", "CSRF_COOKIE_SECURE", "SECURE_CONTENT_TYPE_NOSNIFF",
           "SECURE_REFERRER_POLICY", "SECURE_PROXY_SSL_HEADER", "CLIENT_IP_HEADER")


def run(args, tmp_path, **env):
    clean = {k: v for k, v in os.environ.items() if k not in OWN_ENV}
    env = {**clean, "DJANGO_SETTINGS_MODULE": "studio.settings", "STUDIO_VAR_DIR": str(tmp_path),
           "SQLITE_PATH": str(tmp_path / "check.sqlite3"), **env}
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)


SHOW = ("import django; django.setup(); from django.conf import settings as s; "
        "print(s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_HSTS_PRELOAD, "
        "s.SESSION_COOKIE_SECURE, s.SESSION_COOKIE_HTTPONLY, s.CSRF_COOKIE_SECURE, "
        "getattr(s, 'SECURE_PROXY_SSL_HEADER', None))")


# Settings.

def test_check_deploy_passes_under_production_settings(tmp_path):
    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], tmp_path, **PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNING" not in result.stderr + result.stdout


def test_production_turns_on_https_and_secure_cookies(tmp_path):
    result = run(["-c", SHOW], tmp_path, **PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "31536000", "True", "True", "True", "True", "True", "None"]


def test_development_stays_on_plain_http(tmp_path):
    result = run(["-c", SHOW], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "0", "False", "False", "False", "True", "False", "None"]


def test_each_setting_can_be_overridden(tmp_path):
    result = run(["-c", SHOW], tmp_path, **PRODUCTION, SECURE_HSTS_SECONDS="3600", SECURE_HSTS_PRELOAD="false",
                 SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "3600", "True", "False", "True", "True", "True",
                                     "('HTTP_X_FORWARDED_PROTO',", "'https')"]


@pytest.mark.parametrize("name, value", [
    ("SECURE_SSL_REDIRECT", "maybe"),
    ("SECURE_HSTS_SECONDS", "a year"),
    ("SECURE_HSTS_SECONDS", "-1"),
    ("SESSION_COOKIE_SECURE", "si"),
    ("SECURE_REFERRER_POLICY", "everywhere"),
    ("SECURE_PROXY_SSL_HEADER", "X-Forwarded-Proto: https"),
    ("CLIENT_IP_HEADER", "X Forwarded For"),
    ("LOGIN_FAILURES_PER_USERNAME", "0"),
    ("METRICS_TOKEN", "too-short"),
    ("WORKER_METRICS_PORT", "9100"),  # without METRICS_TOKEN
    ("LOG_FORMAT", "xml"),
    ("SENTRY_DSN", "sentry.example.com/1"),
])
def test_a_bad_value_stops_start_up_naming_the_variable(name, value, tmp_path):
    result = run(["-c", SHOW], tmp_path, **PRODUCTION, **{name: value})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and name in result.stderr.splitlines()[-1]


def test_the_https_redirect_spares_the_health_checks_and_the_metrics(db, settings):
    settings.SECURE_SSL_REDIRECT = True
    client = Client(HTTP_HOST="127.0.0.1")
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    assert client.get("/metrics").status_code == 404  # off without METRICS_TOKEN, but not redirected
    response = client.get("/accounts/login/")
    assert response.status_code == 301 and response["Location"] == "https://127.0.0.1/accounts/login/"


def test_behind_a_proxy_its_https_header_counts(db, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 3600
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    client = Client(HTTP_HOST="127.0.0.1")
    response = client.get("/accounts/login/", HTTP_X_FORWARDED_PROTO="https")
    assert response.status_code == 200 and response["Strict-Transport-Security"].startswith("max-age=3600")
    assert client.get("/accounts/login/", HTTP_X_FORWARDED_PROTO="http").status_code == 301


# Cookies and CSRF.

@pytest.fixture
def production_cookies(settings):
    settings.SESSION_COOKIE_SECURE = True
    settings.CSRF_COOKIE_SECURE = True


def test_session_and_csrf_cookies_are_secure_in_production(production_cookies, member):
    client = Client(HTTP_HOST="127.0.0.1")
    csrf = client.get("/accounts/login/").cookies["csrftoken"]
    assert csrf["secure"] and csrf["samesite"] == "Lax"
    response = client.post("/accounts/login/", {"login": "mark", "password": PASSWORD})
    assert response.status_code == 302
    session = response.cookies["sessionid"]
    assert session["secure"] and session["httponly"] and session["samesite"] == "Lax"
    assert response.cookies["csrftoken"]["secure"]  # rotated at login, still secure


def test_an_htmx_post_without_a_csrf_token_is_refused(member, team):
    client = Client(HTTP_HOST="127.0.0.1", enforce_csrf_checks=True)
    client.force_login(member)
    assert client.post("/studio/fibo/", FIBO, **HX).status_code == 403
    page = client.get("/studio/").content.decode()
    token = re.search(r'hx-headers=\'\{"X-CSRFToken": "([^"]+)"\}\'', page).group(1)
    assert client.post("/studio/fibo/", FIBO, HTTP_X_CSRFTOKEN=token, **HX).status_code == 200


# The Content-Security-Policy, and pages that keep to it.

# `click[ctrlKey]`, `every 1s [cond]`: a filter follows the event; `from:input[name=q]` is CSS.
TRIGGER_FILTER = re.compile(r"\s*(every\s+\S+\s*|[\w:.-]+)\[")


class InlineCode(HTMLParser):
    """What a Content-Security-Policy without 'unsafe-inline' and 'unsafe-eval' blocks:
    inline scripts and styles, event-handler and style attributes, javascript: URLs,
    and the htmx features that evaluate script (hx-on, trigger filters, js: values)."""

    def __init__(self):
        super().__init__()
        self.found = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script" and "src" not in attrs and attrs.get("type") != "application/json":
            self.found.append("<script> without src")
        if tag == "style":
            self.found.append("<style>")
        for name, value in attrs.items():
            value = (value or "").strip().lower()
            bare = name.removeprefix("data-")
            if name == "style" or name.startswith("on") or bare.startswith("hx-on"):
                self.found.append(f"{name}= on <{tag}>")
            if value.startswith("javascript:") or (bare in ("hx-vals", "hx-vars") and "js:" in value):
                self.found.append(f"script in {name}= on <{tag}>")
            if bare == "hx-trigger" and any(TRIGGER_FILTER.match(spec) for spec in value.split(",")):
                self.found.append(f"a trigger filter on <{tag}>")


def inline_code(html):
    parser = InlineCode()
    parser.feed(html)
    return parser.found


def assert_strict_policy(response):
    policy = response["Content-Security-Policy"]
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'" and directives["object-src"] == "'none'"
    assert directives["base-uri"] == "'none'" and directives["form-action"] == "'self'"


@pytest.fixture
def studio_content(team, owner, member, membership):
    """A finished card with its image, a gallery of it and a live share link."""
    job = start_fibo(membership, {**FIBO, "seed": 3})
    asset = make_asset(team, job)
    apply_status(job.pk, "COMPLETED")
    start_fibo(membership, FIBO)  # and one in flight
    gallery = Gallery.objects.create(team=team, title="Spring launch", created_by=member)
    gallery.add(asset, member)
    _, token = ShareLink.create(gallery, member)
    return {"asset": asset, "gallery": gallery, "token": token}


def pages(content):
    asset, gallery = content["asset"].code, content["gallery"].code
    return [
        ("mark", "/studio/"),
        ("mark", "/library/"),
        ("mark", f"/library/{asset}/"),
        ("mark", "/galleries/"),
        ("mark", f"/galleries/{gallery}/"),
        ("mark", "/wallet/"),
        ("mark", "/activity/"),
        ("mark", "/team/"),
        ("olivia", "/team/"),
        ("olivia", "/team/api-keys/"),
        ("olivia", "/audit/"),
        ("olivia", "/reports/"),
        ("stan", "/reports/"),
        (None, f"/s/{content['token']}/"),
        (None, "/accounts/login/"),
        (None, "/accounts/signup/"),
        (None, "/accounts/password/reset/"),
        (None, "/accounts/password/reset/key/1-not-a-token/"),
        ("mark", "/accounts/password/change/"),
        ("mark", "/accounts/email/"),
    ]


def test_every_page_has_a_strict_policy_and_no_inline_code(studio_content, staff):
    for username, url in pages(studio_content):
        client = login(User.objects.get(username=username)) if username else Client(HTTP_HOST="127.0.0.1")
        response = client.get(url, follow=True)
        assert response.status_code == 200, (username, url)
        assert_strict_policy(response)
        assert inline_code(response.content.decode()) == [], (username, url)


def test_the_pages_with_one_time_links_have_no_inline_code(studio_content, owner, member):
    gallery = studio_content["gallery"]
    for user, url, data in [(member, f"/galleries/{gallery.code}/links/", {}),
                            (owner, "/team/invitations/", {"role": "member", "days": "7", "email": ""})]:
        response = login(user).post(url, data)
        html = response.content.decode()
        assert response.status_code == 200 and "data-copy=" in html
        assert_strict_policy(response)
        assert inline_code(html) == []


def test_htmx_is_configured_to_need_no_inline_style_or_eval(member, team):
    html = login(member).get("/studio/").content.decode()
    assert """<meta name="htmx-config" content='{"includeIndicatorStyles": false, "allowEval": false}'>""" in html


def test_the_api_docs_keep_to_the_same_policy(db):
    response = Client(HTTP_HOST="127.0.0.1").get("/api/docs")
    assert response.status_code == 200
    assert_strict_policy(response)
    assert inline_code(response.content.decode()) == []


def test_the_checker_finds_inline_code():
    html = """<script>alert(1)</script><style>p{}</style><p style="color:red" onclick="x()">
              <a href="javascript:void(0)" hx-on:click="x()" hx-trigger="every 1s [ok()]">
              <form hx-trigger="click[ctrlKey], input changed from:find input[name=q]">"""
    assert len(inline_code(html)) == 8


# Login rate limits: django-allauth's, tested in tests/test_accounts.py; the address
# they count by is the one the proxy saw.

def test_behind_a_proxy_the_address_is_the_one_the_proxy_saw(settings):
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.9")
    assert throttle.client_address(request) == "10.0.0.2"
    settings.CLIENT_IP_HEADER = "X-Forwarded-For"
    assert throttle.client_address(request) == "198.51.100.9"


# In a real browser: no page trips the policy.

@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_no_page_trips_the_policy_in_a_browser(browser, live_server, studio_content, staff):
    problems = []

    def watch(page):
        # A blocked script, style or eval is reported on the console; an uncaught error
        # is a script that broke. (A missing /favicon.ico on the admin is neither.)
        page.on("console", lambda message: problems.append(f"{page.url}: {message.text}")
                if "Content Security Policy" in message.text or "unsafe-eval" in message.text else None)
        page.on("pageerror", lambda error: problems.append(f"{page.url}: {error}"))
        return page

    visitor = watch(browser.new_page())
    for url in (f"/s/{studio_content['token']}/", "/accounts/signup/", "/api/docs"):
        visitor.goto(live_server.url + url)
        visitor.wait_for_load_state("networkidle")
    # Swagger UI draws the operations from the schema once it has fetched it: wait for them.
    expect(visitor.locator("#swagger-ui .opblock")).not_to_have_count(0)  # the API docs rendered

    admin = ["/admin/", "/admin/auth/user/", "/admin/accounts/team/", f"/admin/auth/user/{staff.pk}/change/"]
    for username, extra in (("mark", []), ("olivia", []), ("stan", admin)):
        page = watch(browser.new_context().new_page())
        log_in(page, live_server.url, username)
        for url in [url for who, url in pages(studio_content) if who == username] + extra:
            page.goto(live_server.url + url)
            page.wait_for_load_state("networkidle")
        page.context.close()

    member = watch(browser.new_context().new_page())
    log_in(member, live_server.url, "mark")
    member.wait_for_timeout(2500)  # a few ticks of the card poll, with a card in flight
    assert problems == []


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_confirmations_and_copy_buttons_work_from_the_static_script(browser, live_server, owner, member, team):
    context = browser.new_context(permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    log_in(page, live_server.url, "olivia")
    page.goto(f"{live_server.url}/team/")
    page.click(".team-invite-form button[type=submit]")
    page.locator("button[data-copy]").click()
    page.locator("button[data-copy]", has_text="Copied").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == page.input_value("#new-invitation-url")

    questions = []
    page.once("dialog", lambda dialog: (questions.append(dialog.message), dialog.dismiss()))
    page.click("form[data-confirm^='Remove mark'] button")
    assert questions == ["Remove mark from Acme? They lose access at once."]
    assert team.memberships.filter(user=member).exists(), "dismissed: nothing was sent"
    page.once("dialog", lambda dialog: dialog.accept())
    with page.expect_navigation():
        page.click("form[data-confirm^='Remove mark'] button")
    assert not team.memberships.filter(user=member).exists()
    context.close()


def test_the_admin_logs_in_through_the_studio_s_login(staff, member):
    client = Client(HTTP_HOST="127.0.0.1")
    response = client.get("/admin/")
    assert response.status_code == 302 and response["Location"] == "/admin/login/?next=/admin/"
    response = client.get(response["Location"])
    assert response.status_code == 302 and response["Location"] == "/accounts/login/?next=%2Fadmin%2F"
    # Its own form is gone: a POST to it is sent to the studio's login, unchecked.
    response = client.post("/admin/login/", {"username": "stan", "password": PASSWORD})
    assert response.status_code == 302 and "_auth_user_id" not in client.session
    response = client.post("/accounts/login/?next=%2Fadmin%2F", {"login": "stan", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/accounts/2fa/authenticate/"  # staff use 2FA
    response = client.post(response["Location"], {"code": totp.code(totp.secret_of(staff))})
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    assert login(member).get("/admin/login/").status_code == 403  # logged in, not staff

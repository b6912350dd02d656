"""Accounts in a real browser (Debian's Chromium through Playwright), against the real
worker: a forgotten password (the email sent by the worker to a real SMTP server) →
reset → log in; an invitation → sign-up → the inviting team at once → generate; an
attacker's failed logins from one address while the real user logs in from another.

On the way it takes screenshots of the account pages at desktop and phone widths (in
var/screenshots/), and checks no page logs a console error.
"""

import re

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import expect

from studio.accounts.models import Role
from tests.test_browser import browser  # noqa: F401  (the fixture)
from tests.test_browser_journey import DESKTOP, shoot, wait_for_card, watch_console

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-for-tests-only"
NEW_PASSWORD = "a-new-long-phrase-31"


@pytest.fixture
def worker_env(smtp_server):
    """The worker sends to this test's SMTP server."""
    return {**smtp_server.env(), "EMAIL_TIMEOUT": "2"}


def log_in(page, base, login, password):
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_login", login)
    page.fill("#id_password", password)
    page.click("form button[type=submit]")


def test_a_forgotten_password_is_reset_from_the_email(browser, live_server, worker, smtp_server, member):  # noqa: F811
    base, errors = live_server.url, []
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    watch_console(page, errors)

    page.goto(f"{base}/accounts/login/")
    page.get_by_role("link", name="Forgot your password?").click()
    page.fill("#id_email", "mark@example.com")
    page.get_by_role("button", name="Send the link").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()

    [received] = smtp_server.wait_for(1)  # sent by the worker, from the queue
    assert received.rcpt_tos == ["mark@example.com"]
    [reset_url] = re.findall(r"http://\S+/accounts/password/reset/key/\S+/", received.body)
    page.goto(reset_url)
    page.fill("#id_password1", NEW_PASSWORD)
    page.fill("#id_password2", NEW_PASSWORD)
    page.get_by_role("button", name="Set the password").click()
    expect(page.get_by_role("heading", name="Your password is changed")).to_be_visible()

    page.goto(reset_url)  # once only
    expect(page.get_by_role("heading", name="This reset link is not valid")).to_be_visible()
    log_in(page, base, "mark@example.com", NEW_PASSWORD)
    page.wait_for_url("**/studio/")

    cookies = context.cookies()
    for path, name in (("/accounts/password/change/", "password-change"), ("/accounts/email/", "email")):
        shoot(browser, f"{base}{path}", f"accounts-{name}", cookies, errors)
    for url, name in ((f"{base}/accounts/login/", "login"), (f"{base}/accounts/signup/", "signup"),
                      (f"{base}/accounts/password/reset/", "password-reset"),
                      (f"{base}/accounts/password/reset/done/", "password-reset-done"),
                      (reset_url, "password-reset-used")):
        shoot(browser, url, f"accounts-{name}", [], errors)
    context.close()
    assert errors == [], errors


def test_an_invited_newcomer_signs_up_into_the_team_and_generates(browser, live_server, worker, emulator,  # noqa: F811
                                                                  team, owner):
    base, errors = live_server.url, []
    _, token = team.invite(owner, Role.MEMBER, email="sam@example.com")
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    watch_console(page, errors)

    page.goto(f"{base}/invitations/{token}/")
    shoot(browser, page.url, "accounts-invitation", context.cookies(), errors)
    page.get_by_role("link", name="Sign up").click()
    expect(page.get_by_text("You join Acme as member")).to_be_visible()
    expect(page.locator("#id_email")).to_have_value("sam@example.com")
    assert page.locator("#id_team_name").count() == 0
    shoot(browser, page.url, "accounts-signup-invited", context.cookies(), errors)
    page.fill("#id_username", "sam")
    page.fill("#id_password1", NEW_PASSWORD)
    page.fill("#id_password2", NEW_PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url("**/studio/")
    expect(page.locator(".team-current .team")).to_have_text("Acme")
    assert [m.team for m in User.objects.get(username="sam").memberships.all()] == [team]

    page.fill("#id_prompt", "A paper boat on a calm lake at dawn")
    page.click("#fibo-form button[type=submit]")
    card = page.locator("#cards article").first
    card.wait_for()
    assert wait_for_card(card, "… → COMPLETED")[-1] == "COMPLETED"
    context.close()
    assert errors == [], errors


def test_an_attacker_s_guesses_leave_the_real_user_free_to_log_in(browser, live_server, member, settings):  # noqa: F811
    settings.CLIENT_IP_HEADER = "X-Forwarded-For"  # as behind the TLS proxy, which sets it
    base = live_server.url
    attacker = browser.new_context(extra_http_headers={"X-Forwarded-For": "203.0.113.66"}).new_page()
    for n in range(20):
        log_in(attacker, base, "mark", f"guess-{n}")
    expect(attacker.get_by_text("Too many failed login attempts")).to_be_visible()
    log_in(attacker, base, "mark", PASSWORD)
    expect(attacker.get_by_text("Too many failed login attempts")).to_be_visible()  # the pair stays refused

    real_user = browser.new_context(extra_http_headers={"X-Forwarded-For": "198.51.100.23"}).new_page()
    log_in(real_user, base, "mark", PASSWORD)
    real_user.wait_for_url("**/studio/")

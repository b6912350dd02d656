"""Two-factor authentication in a real browser (Debian's Chromium through Playwright):
an owner requires it of the team; a member without it is sent to enrol, reads the
secret off the page, turns it on with the code an authenticator app would show, then
logs in with a code, and with a recovery code.

On the way it takes screenshots of the two-factor pages at desktop and phone widths (in
var/screenshots/), and checks no page logs a console error.
"""

import pytest
from playwright.sync_api import expect

from tests import totp
from tests.test_browser import browser  # noqa: F401  (the fixture)
from tests.test_browser_accounts import log_in
from tests.test_browser_journey import DESKTOP, shoot, watch_console

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-for-tests-only"


def log_out(page):
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/accounts/login/")


def second_step(page, code):
    page.wait_for_url("**/accounts/2fa/authenticate/")
    page.fill("#id_code", code)
    page.get_by_role("button", name="Log in", exact=True).click()


def test_a_member_enrols_when_the_team_requires_it_then_logs_in_with_a_code_and_a_recovery_code(  # noqa: F811
        browser, live_server, team, owner, member):
    base, errors = live_server.url, []
    owner_secret = totp.enrol(owner)

    # The owner (enrolled already) logs in with a code and requires 2FA of the team.
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    watch_console(page, errors)
    log_in(page, base, "olivia", PASSWORD)
    second_step(page, totp.code(owner_secret))
    page.wait_for_url("**/studio/")
    page.goto(f"{base}/team/")
    page.get_by_role("button", name="Require it of every member").click()
    expect(page.get_by_text("Two-factor authentication is required in Acme.")).to_be_visible()
    shoot(browser, f"{base}/team/#two-factor", "mfa-team-required", context.cookies(), errors)
    context.close()

    # The member logs in with a password alone and is sent to enrol, with the reason.
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    watch_console(page, errors)
    log_in(page, base, "mark", PASSWORD)
    page.wait_for_url("**/accounts/reauthenticate/**")
    expect(page.get_by_text("Acme requires two-factor authentication")).to_be_visible()
    shoot(browser, page.url, "mfa-reauthenticate", context.cookies(), errors)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_url("**/accounts/2fa/totp/activate/")
    shoot(browser, page.url, "mfa-enrol", context.cookies(), errors)
    page.reload()  # each showing of the page makes a new secret: read this one's

    secret = page.inner_text("#authenticator-secret")
    expect(page.get_by_role("img", name="QR code of your authenticator secret")).to_be_visible()
    page.fill("#id_code", totp.wrong_code(secret))
    page.get_by_role("button", name="Turn on").click()
    expect(page.get_by_text("Incorrect code.")).to_be_visible()
    page.fill("#id_code", totp.code(secret))
    page.get_by_role("button", name="Turn on").click()
    page.wait_for_url("**/accounts/2fa/recovery-codes/")
    codes = page.locator(".mfa-codes code").all_inner_texts()
    assert len(codes) == 10
    shoot(browser, page.url, "mfa-recovery-codes", context.cookies(), errors)
    page.get_by_role("link", name="Continue").click()
    page.wait_for_url("**/studio/")

    # Log out; log in with a code (after a wrong one).
    log_out(page)
    log_in(page, base, "mark", PASSWORD)
    page.wait_for_url("**/accounts/2fa/authenticate/")
    shoot(browser, page.url, "mfa-authenticate", context.cookies(), errors)
    page.fill("#id_code", totp.wrong_code(secret))
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page.get_by_text("Incorrect code.")).to_be_visible()
    second_step(page, totp.code(secret, 1))
    page.wait_for_url("**/studio/")

    # Log out; log in with a recovery code, which then is used up.
    log_out(page)
    log_in(page, base, "mark", PASSWORD)
    second_step(page, codes[0])
    page.wait_for_url("**/studio/")
    assert totp.recovery_codes(member) == codes[1:]

    # The settings pages, behind a fresh confirmation.
    page.goto(f"{base}/accounts/2fa/recovery-codes/generate/")
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_url("**/accounts/2fa/recovery-codes/generate/")
    cookies = context.cookies()
    for path, name in (("/accounts/2fa/", "mfa-index"), ("/accounts/2fa/recovery-codes/generate/", "mfa-new-codes"),
                       ("/accounts/2fa/totp/deactivate/", "mfa-deactivate")):
        shoot(browser, f"{base}{path}", name, cookies, errors)
    context.close()
    assert errors == [], errors

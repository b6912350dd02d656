"""A new team's whole first day, in a real browser (Debian's Chromium through Playwright),
against the real worker and the gateway emulator over HTTP:

sign up → staff tops the team up → generate → the card goes QUEUED → PROCESSING →
COMPLETED without a reload → remove its background → both results into a gallery → the
share link opened logged out in a fresh browser context → the staff spend report shows
exactly $0.058 for the team.

On the way it takes screenshots of the main pages at desktop and phone widths (in
var/screenshots/), and checks no page logs a console error (a CSP violation included).
"""

import re
import time

import pytest
from playwright.sync_api import expect

from jobs.models import Job
from studio.accounts.models import Team
from tests import totp
from tests.test_browser import SCREENSHOTS, browser  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
PASSWORD = "a-long-secret-phrase-9"


def watch_console(page, errors):
    page.on("console", lambda message: message.type == "error" and errors.append(f"{page.url}: {message.text}"))
    page.on("pageerror", lambda exc: errors.append(f"{page.url}: {exc}"))


def shoot(browser, url, name, cookies, errors):  # noqa: F811
    """The page at desktop and phone widths, as the signed-in user of `cookies`."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for label, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        context = browser.new_context(viewport=viewport)
        context.add_cookies(cookies)
        page = context.new_page()
        watch_console(page, errors)
        page.goto(url)
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(SCREENSHOTS / f"journey-{name}-{label}.png"), full_page=True)
        context.close()


def wait_for_card(card, statuses, seconds=40):
    seen = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = card.get_attribute("data-status")
        if not seen or seen[-1] != status:
            seen.append(status)
        if status == "COMPLETED" and card.locator("img").count():
            return seen
        time.sleep(0.05)
    raise AssertionError(f"the card went {seen}, not {statuses}")


def test_a_new_teams_first_day(browser, live_server, worker, emulator, staff, settings):  # noqa: F811
    settings.FIRST_TOPUP_BONUS_MICROS = 0
    # Four seconds in PROCESSING at the gateway: the card's poll (one a second) sees it
    # even when the refresh that confirms it runs late on a busy machine.
    emulator.configure(delay=6.0)
    base = live_server.url
    errors = []

    # Sign up: a personal team with an empty wallet.
    member_context = browser.new_context(viewport=DESKTOP)
    page = member_context.new_page()
    watch_console(page, errors)
    page.goto(f"{base}/accounts/signup/")
    page.fill("#id_username", "nina")
    page.fill("#id_email", "nina@example.com")
    page.fill("#id_password1", PASSWORD)
    page.fill("#id_password2", PASSWORD)
    page.fill("#id_team_name", "Nina's Studio")
    page.click("form button[type=submit]")
    page.wait_for_url("**/studio/")
    assert "$0.00" in page.locator("#wallet").inner_text()
    team = Team.objects.get(memberships__user__username="nina")

    # Staff top the team up through the admin.
    staff_context = browser.new_context(viewport=DESKTOP)
    admin = staff_context.new_page()
    watch_console(admin, errors)
    admin.goto(f"{base}/admin/")  # the admin sends staff to the studio's login, and back
    admin.fill("#id_login", staff.username)
    admin.fill("#id_password", "pw-for-tests-only")
    admin.click("form button[type=submit]")
    admin.wait_for_url("**/accounts/2fa/authenticate/")  # staff use two-factor authentication
    admin.fill("#id_code", totp.code(totp.secret_of(staff)))
    admin.click("form button[type=submit]")
    admin.wait_for_url(f"{base}/admin/")
    admin.goto(f"{base}/admin/accounts/team/{team.pk}/topup/")
    admin.fill("#id_amount", "10")
    admin.fill("#id_reason", "Invoice 2026-118")
    admin.click("input[type=submit][value='Top up']")
    admin.wait_for_url(f"{base}/admin/accounts/team/{team.pk}/change/")  # booked before the redirect
    team.wallet.refresh_from_db()
    assert team.wallet.balance == 10_000_000

    # Generate, and watch the card follow the job without a reload.
    page.reload()
    assert "$10.00" in page.locator("#wallet").inner_text()
    navigations = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    page.fill("#id_prompt", "A paper boat on a calm lake at dawn")
    page.click("#fibo-form button[type=submit]")
    card = page.locator("#cards article").first
    card.wait_for()
    assert wait_for_card(card, "QUEUED → PROCESSING → COMPLETED") == ["QUEUED", "PROCESSING", "COMPLETED"]
    assert navigations == [], "the page never reloaded"

    # Remove its background from the card.
    emulator.configure(delay=2.0)  # only its end is watched
    card.get_by_role("button", name="Remove background").click()
    expect(page.locator("#cards article")).to_have_count(2)
    cutout_card = page.locator("#cards article").first
    assert wait_for_card(cutout_card, "… → COMPLETED")[-1] == "COMPLETED"
    expect(page.locator("#wallet")).to_contain_text("$9.942", timeout=10_000)
    fibo, rmbg = Job.objects.get(model="fibo"), Job.objects.get(model="rmbg")
    assert (fibo.money, rmbg.money) == ("charged", "charged")

    # Both results into a new gallery.
    page.goto(f"{base}/galleries/")
    page.fill("#id_title", "Boats")
    page.get_by_role("button", name="Create gallery").click()
    page.wait_for_url(re.compile(r".*/galleries/[0-9a-f-]+/$"))
    gallery_url = page.url
    for added in (1, 2):
        page.locator("form[action$='/items/'] button", has_text="Add").first.click()
        expect(page.locator("#items img")).to_have_count(added)  # the page after the POST

    # Share it, and open the link logged out.
    page.get_by_role("button", name="Create link").click()
    link = page.locator("#new-link-url")
    link.wait_for()
    share_url = link.input_value()
    stranger = browser.new_context(viewport=PHONE)
    shared = stranger.new_page()
    watch_console(shared, errors)
    shared.goto(share_url)
    assert "Boats" in shared.title() or "Boats" in shared.content()
    assert shared.locator("img").count() >= 2
    shared.screenshot(path=str(SCREENSHOTS / "journey-share-phone.png"), full_page=True)
    stranger.close()

    # The staff spend report: exactly $0.058 for the team.
    admin.goto(f"{base}/reports/")
    row = admin.locator("tr", has_text="Nina's Studio")
    assert "$0.058" in row.inner_text()

    # Screenshots of the main pages, desktop and phone.
    member_cookies = member_context.cookies()
    asset = fibo.outputs[0]
    for path, name in (("/studio/", "studio"), ("/library/", "library"), (f"/library/{asset.code}/", "asset"),
                       ("/galleries/", "galleries"), (gallery_url.removeprefix(base), "gallery"),
                       ("/wallet/", "wallet"), ("/team/", "team"), ("/activity/", "activity")):
        shoot(browser, f"{base}{path}", name, member_cookies, errors)
    shoot(browser, f"{base}/reports/", "reports", staff_context.cookies(), errors)
    shoot(browser, f"{base}/accounts/login/", "login", [], errors)

    member_context.close()
    staff_context.close()
    assert errors == [], errors

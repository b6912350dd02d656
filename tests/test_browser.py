"""The studio page in a real browser (Debian's Chromium through Playwright): a member
generates an image and watches its card go QUEUED → PROCESSING → COMPLETED, with the
wallet in the header following, without the page reloading."""

import base64
import os
import shutil
import time
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.db import connections
from django.utils import timezone
from playwright.sync_api import expect

from devtools.emulator.images import render_fibo
from jobs.models import Job, WebhookDelivery
from studio.billing.models import Wallet
from tests import totp
from tests.stack import ROOT, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCREENSHOTS = ROOT / "var" / "screenshots"


@pytest.fixture
def browser(monkeypatch):
    # Playwright's sync API keeps an event loop on this thread; the ORM calls in these
    # tests are still plain synchronous calls between browser steps.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (.ci/run installs Debian's package)")
        pytest.skip("Debian's chromium is not installed: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()
        # The ORM calls made while Playwright's loop ran have their own connection
        # (asgiref's context-local storage); close it so the test database can be dropped.
        connections.close_all()


def log_in(page, base_url, username):
    page.goto(f"{base_url}/accounts/login/")
    page.fill("#id_login", username)
    page.fill("#id_password", "pw-for-tests-only")
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/accounts/login/" not in url)  # members land on the studio, staff elsewhere
    if "/accounts/2fa/authenticate/" in page.url:  # staff (and anyone enrolled) give a code too
        page.fill("#id_code", totp.code(totp.secret_of(User.objects.get(username=username))))
        page.click("button.primary")
        page.wait_for_url(lambda url: "/accounts/2fa/" not in url)


def test_a_card_follows_its_job_live(browser, live_server, worker, emulator, member, team):
    # Four seconds in PROCESSING at the gateway: the card's poll (one a second) sees it
    # even when the refresh that confirms it runs late on a busy machine.
    emulator.configure(delay=6.0)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    log_in(page, live_server.url, member.username)
    navigations = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    expect(page.locator("#wallet")).to_contain_text("$1.00", use_inner_text=True)

    page.fill("#id_prompt", "A magnificent hot air balloon festival at sunrise")
    page.select_option("#id_aspect_ratio", "16:9")
    page.click("#fibo-form button[type=submit]")
    card = page.locator("#cards article").first
    card.wait_for()

    seen = []
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        status = card.get_attribute("data-status")
        if not seen or seen[-1] != status:
            seen.append(status)
        if status == "COMPLETED" and card.locator("img").count():
            shown_at = timezone.now()
            break
        time.sleep(0.05)
    assert seen == ["QUEUED", "PROCESSING", "COMPLETED"], seen
    # A refresh woken by a PROCESSING callback may finish the job before this one lands.
    webhook = wait_until(lambda: WebhookDelivery.objects.filter(status="COMPLETED").first(), seconds=10,
                         what="the COMPLETED webhook")
    shown_after = (shown_at - webhook.received_at).total_seconds()
    assert shown_after < 2, f"the card showed COMPLETED {shown_after:.2f} s after the webhook reached the studio"
    assert navigations == [], "the page never reloaded"
    time.sleep(5.5)  # a full cycle of the idle poll for teammates' cards
    assert page.locator("#cards article").count() == 1, "the page's own card is never inserted twice"
    expect(page.locator("#wallet")).to_contain_text("$0.96", use_inner_text=True)
    expect(card).to_contain_text("charged", use_inner_text=True)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "studio-desktop.png", full_page=True)

    # Once nothing is in flight, the page drops from a poll a second to the idle poll
    # (every 5 s) that brings teammates' new cards.
    polls = []
    page.on("request", lambda request: polls.append(request.url) if "/studio/cards/" in request.url else None)
    time.sleep(5.5)
    assert len(polls) <= 2, polls
    assert Job.objects.get().status == "COMPLETED"
    assert Wallet.objects.get(team=team).balance == 960_000


def test_too_little_balance_is_said_plainly_in_the_form(browser, live_server, outsider):
    # Said before anyone submits; the server's own refusal: tests/test_landing.py.
    page = browser.new_page(viewport={"width": 390, "height": 844})
    log_in(page, live_server.url, outsider.username)
    page.fill("#id_prompt", "a red balloon")
    expect(page.locator("#fibo-form button[type=submit]")).to_be_disabled()
    expect(page.locator("#fibo-why")).to_have_text("Not enough credit: $0.00 available.", use_inner_text=True)
    page.locator("#id_seed").press("Enter")  # no way around the button either
    expect(page.locator("#no-credit")).to_contain_text("Other has no credit", use_inner_text=True)
    assert page.locator("#cards article").count() == 0
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "studio-phone-insufficient.png", full_page=True)
    assert not Job.objects.exists()


def test_a_teammates_new_card_appears_without_a_reload(browser, live_server, owner, member, team):
    watcher = browser.new_page(viewport={"width": 1280, "height": 900})
    log_in(watcher, live_server.url, owner.username)
    navigations = []
    watcher.on("framenavigated", lambda frame: navigations.append(frame.url))

    teammate = browser.new_context().new_page()
    log_in(teammate, live_server.url, member.username)
    teammate.fill("#id_prompt", "a teammate's lighthouse")
    teammate.click("#fibo-form button[type=submit]")
    teammate.locator("#cards article").first.wait_for()

    card = watcher.locator("#cards article", has_text="a teammate's lighthouse")
    card.wait_for(timeout=15_000)
    expect(card).to_contain_text("by mark", use_inner_text=True)
    assert watcher.locator("#cards article").count() == 1
    assert navigations == []
    teammate.context.close()


def test_a_running_cards_elapsed_time_counts_on_its_own(browser, live_server, member, team):
    # No worker: the job stays QUEUED, and no poll brings a new rendering of its card.
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    log_in(page, live_server.url, member.username)
    page.fill("#id_prompt", "a slow lighthouse")
    page.click("#fibo-form button[type=submit]")
    elapsed = page.locator("#cards article .elapsed").first
    elapsed.wait_for()
    first = float(elapsed.inner_text().removesuffix(" s"))
    # Two seconds more on the card, however late a busy machine runs the page's timer.
    page.wait_for_function("first => parseFloat(document.querySelector('#cards article .elapsed').textContent)"
                           " >= first + 2", arg=first, timeout=10_000)


def test_an_image_dropped_on_the_form_has_its_background_removed(browser, live_server, member, team):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    log_in(page, live_server.url, member.username)
    png = base64.b64encode(render_fibo("a cat", 1, "1:1")).decode()
    files = page.evaluate_handle(
        """(data) => {
            const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], "cat.png", {type: "image/png"}));
            return transfer;
        }""", png)
    page.dispatch_event("#rmbg-form", "dragenter", {"dataTransfer": files})
    assert "dragging" in page.get_attribute("#rmbg-form", "class")
    page.dispatch_event("#rmbg-form", "drop", {"dataTransfer": files})
    assert "dragging" not in page.get_attribute("#rmbg-form", "class")
    page.click("#rmbg-form button[type=submit]")
    page.locator("#cards article").first.wait_for()
    job = Job.objects.get()
    assert job.model == "rmbg" and job.source_asset.role == "input" and job.source_asset.media_type == "image/png"

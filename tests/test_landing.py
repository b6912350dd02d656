"""Landing in the right team: the team used last is where a new session starts, a link
to another of the user's teams switches there (and nothing else does), "/" sends each
kind of user where they belong, and an empty wallet is said before anyone submits."""

import pytest
from django.conf import settings
from django.test import Client, override_settings
from playwright.sync_api import expect

from devtools.emulator.images import render_fibo
from jobs.actions import start_fibo
from jobs.models import Job
from studio.accounts.models import Membership, Role, Team
from studio.api.models import APIKey
from studio.billing import money
from studio.billing.models import Price
from studio.gallery.models import Gallery
from studio.library.models import Asset
from tests.conftest import login, make_user
from tests.test_browser import browser, log_in  # noqa: F401  (the fixture)
from tests.test_browser_journey import DESKTOP, PHONE, shoot

VALID = {"prompt": "a red balloon", "aspect_ratio": "1:1", "steps_num": "30", "guidance_scale": "7.5"}
SWITCHED = "Switched to team Acme to show this."


def team_of(response):
    return response.context["team"].slug


def in_team(client, slug):
    response = client.post("/teams/switch/", {"team": slug})
    assert response.status_code == 302
    return client


@pytest.fixture
def other(outsider):
    return Team.objects.get(slug="other")


@pytest.fixture
def two_teams(member, team, other):
    """mark, a member of acme since the cast met, joins oscar's team `other` later."""
    Membership.objects.create(team=other, user=member, role=Role.MEMBER)
    return member


# The team used last.

def test_with_no_team_ever_chosen_the_oldest_is_current(two_teams):
    assert team_of(login(two_teams).get("/studio/")) == "acme"


def test_a_new_session_starts_in_the_team_used_last(two_teams):
    in_team(login(two_teams), "other")
    assert team_of(login(two_teams).get("/studio/")) == "other"


def test_each_session_keeps_its_own_choice_and_new_ones_follow_the_last(two_teams):
    laptop = in_team(login(two_teams), "other")
    in_team(login(two_teams), "acme")  # the phone, later
    assert team_of(laptop.get("/studio/")) == "other"
    assert team_of(login(two_teams).get("/studio/")) == "acme"


def test_a_team_left_is_not_where_a_new_session_starts(two_teams, other):
    client = in_team(login(two_teams), "other")
    assert client.post("/team/leave/").status_code == 302
    assert team_of(login(two_teams).get("/studio/")) == "acme"


def test_switching_to_a_team_one_is_not_in_remembers_nothing(member, team, outsider):
    client = login(member)
    assert client.post("/teams/switch/", {"team": "other"}).status_code == 404
    assert not Membership.objects.filter(last_used_at__isnull=False).exists()


# Links to another of the user's teams.

@pytest.fixture
def acme_things(team, owner, membership):
    job = start_fibo(membership, {**VALID, "steps_num": 30})
    asset = Asset.from_bytes(render_fibo("x", 1, "1:1"), team=team, role="output", job=job)
    asset.save()
    gallery = Gallery.objects.create(team=team, title="Picks", created_by=owner)
    return {"job": job, "asset": asset, "gallery": gallery}


def links(things):
    return [f"/jobs/{things['job'].code}/", f"/library/{things['asset'].code}/",
            f"/galleries/{things['gallery'].code}/", f"/assets/{things['asset'].code}/"]


def test_a_link_to_another_of_ones_teams_switches_there_with_a_notice(two_teams, acme_things):
    for url in links(acme_things)[:-1]:  # the pages; the image file is the next test's
        client = in_team(login(two_teams), "other")
        response = client.get(url)
        assert response.status_code == 302 and response["Location"] == url, url
        shown = client.get(url)
        html = shown.content.decode()
        assert shown.status_code == 200 and SWITCHED in html, url
        assert 'class="team" title="Current team: members and caps">Acme</a>' in html, url
        assert team_of(login(two_teams).get("/studio/")) == "acme"  # remembered, too


def test_a_link_to_another_teams_image_switches_and_says_so_on_the_next_page(two_teams, acme_things):
    client = in_team(login(two_teams), "other")
    url = links(acme_things)[-1]
    assert client.get(url)["Location"] == url
    image = client.get(url)
    assert image.status_code == 200 and image["Content-Type"] == "image/png"
    assert SWITCHED in client.get("/studio/").content.decode()


def test_the_query_string_survives_the_switch(two_teams, acme_things):
    url = f"/assets/{acme_things['asset'].code}/?download=1"
    response = in_team(login(two_teams), "other").get(url)
    assert response.status_code == 302 and response["Location"] == url


def test_a_form_posted_to_another_team_is_a_404_and_switches_nothing(two_teams, acme_things):
    client = in_team(login(two_teams), "other")
    job = acme_things["job"]
    assert client.post(f"/jobs/{job.code}/variations/", {"count": "1"}).status_code == 404
    assert client.post(f"/library/{acme_things['asset'].code}/star/", {"starred": "1"}).status_code == 404
    assert team_of(client.get("/studio/")) == "other"
    assert Job.objects.count() == 1


def test_htmx_requests_and_images_of_another_team_are_404s_that_switch_nothing(two_teams, acme_things):
    client = in_team(login(two_teams), "other")
    job, asset = acme_things["job"], acme_things["asset"]
    assert client.get(f"/jobs/{job.code}/", HTTP_HX_REQUEST="true").status_code == 404
    image = {"HTTP_SEC_FETCH_MODE": "no-cors", "HTTP_SEC_FETCH_DEST": "image"}
    assert client.get(f"/assets/{asset.code}/thumbnail/", **image).status_code == 404
    assert team_of(client.get("/studio/")) == "other"


def test_a_browser_navigation_switches(two_teams, acme_things):
    client = in_team(login(two_teams), "other")
    url = f"/jobs/{acme_things['job'].code}/"
    assert client.get(url, HTTP_SEC_FETCH_MODE="navigate", HTTP_SEC_FETCH_DEST="document").status_code == 302


def test_the_api_never_switches(two_teams, other, acme_things):
    _, raw = APIKey.issue(other, two_teams, "script")
    api = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert api.get(f"/api/jobs/{acme_things['job'].code}").status_code == 404
    assert api.get(f"/api/library/{acme_things['asset'].code}").status_code == 404
    assert api.get(f"/api/galleries/{acme_things['gallery'].code}").status_code == 404
    assert not Membership.objects.filter(last_used_at__isnull=False).exclude(team=other).exists()


def test_an_outsiders_link_stays_a_404(outsider, acme_things):
    client = login(outsider)
    for url in links(acme_things):
        assert client.get(url).status_code == 404, url
    assert team_of(client.get("/studio/")) == "other"
    assert not Membership.objects.filter(last_used_at__isnull=False).exists()


def test_a_link_to_a_team_one_left_is_a_404(two_teams, acme_things, team):
    client = in_team(login(two_teams), "other")
    Membership.objects.filter(team=team, user=two_teams).delete()
    assert client.get(links(acme_things)[0]).status_code == 404


# Where "/" lands.

def test_staff_land_on_the_spend_report(staff):
    response = login(staff).get("/")
    assert response.status_code == 302 and response["Location"] == "/reports/"


def test_a_member_lands_in_the_studio(member):
    response = login(member).get("/")
    assert response.status_code == 302 and response["Location"] == "/studio/"


def test_a_visitor_is_asked_to_log_in_and_comes_back_to_land(db):
    response = Client(HTTP_HOST="127.0.0.1").get("/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/?next=/"


def test_logging_in_lands_on_home(settings):
    assert settings.LOGIN_REDIRECT_URL == "home"


def test_someone_in_no_team_is_told_how_to_join_or_create_one(db):
    response = login(make_user("nora")).get("/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "invitation link" in html and 'name="name"' in html and "Create team" in html


def test_a_team_page_for_someone_in_no_team_says_the_same(db):
    response = login(make_user("nora")).get("/studio/")
    assert response.status_code == 403 and "Create team" in response.content.decode()


def test_the_form_creates_a_team_they_own_and_opens_its_studio(db):
    nora = make_user("nora")
    client = login(nora)
    response = client.post("/", {"name": "Nora's Prints"})
    assert response.status_code == 302 and response["Location"] == "/studio/"
    team = Team.objects.get(memberships__user=nora)
    assert (team.name, team.slug, team.memberships.get().role) == ("Nora's Prints", "noras-prints", Role.OWNER)
    assert (team.wallet.balance, team.wallet.held) == (0, 0)
    page = client.get("/studio/").content.decode()
    assert "Nora&#x27;s Prints is yours." in page and 'id="no-credit"' in page


@pytest.mark.parametrize("name, error", [
    ("", "This field is required."),
    ("   ", "This field is required."),
    ("!!!", "Use at least one letter or digit."),
    ("x" * 101, "Ensure this value has at most 100 characters (it has 101)."),
    ("bad\x00name", "Null characters are not allowed."),
])
def test_a_bad_team_name_is_refused_on_its_field(db, name, error):
    response = login(make_user("nora")).post("/", {"name": name})
    assert response.status_code == 400
    assert error in response.content.decode()
    assert response.context["form"].errors["name"] == [error]
    assert not Team.objects.exists()


def test_the_landing_takes_no_other_method(member):
    assert login(member).put("/").status_code == 405


# An empty wallet, said before anyone submits.

def studio_page(user):
    response = login(user).get("/studio/")
    assert response.status_code == 200
    return response.content.decode()


DISABLED_FIBO = '<button type="submit" class="primary" disabled aria-describedby="fibo-why">Generate</button>'
DISABLED_RMBG = '<button type="submit" class="primary" disabled aria-describedby="rmbg-why">Remove background</button>'


def test_an_owner_of_an_empty_team_is_told_how_credit_is_added(outsider):
    html = studio_page(outsider)
    assert 'id="no-credit"' in html and "Other has no credit" in html
    assert "Credit is added by Bria Studio's staff" in html and 'href="/wallet/">wallet page</a>' in html
    assert DISABLED_FIBO in html and DISABLED_RMBG in html
    assert html.count("Not enough credit: $0.00 available.") == 2


def test_the_cheapest_job_is_read_from_the_price_list(outsider):
    assert "the cheapest job costs $0.018." in studio_page(outsider)
    Price.objects.create(model="rmbg", amount=50_000)
    assert "the cheapest job costs $0.04." in studio_page(outsider)


def test_a_member_of_an_empty_team_is_told_which_owners_to_ask(outsider, other):
    nina = make_user("nina")
    Membership.objects.create(team=other, user=nina, role=Role.MEMBER)
    html = studio_page(nina)
    assert "Only the team's owner can have it topped up: ask <strong>oscar</strong>." in html
    assert DISABLED_FIBO in html and DISABLED_RMBG in html
    Membership.objects.create(team=other, user=make_user("otto"), role=Role.OWNER)
    assert "owners can have it topped up: ask <strong>oscar, otto</strong>." in studio_page(nina)


def test_a_wallet_with_credit_shows_no_notice_and_enabled_buttons(member, team):
    html = studio_page(member)
    assert 'id="no-credit"' not in html and "Not enough credit" not in html
    assert '<button type="submit" class="primary">Generate</button>' in html


def test_credit_for_the_cheaper_job_only_disables_the_dearer_one(outsider, other):
    with override_settings(FIRST_TOPUP_BONUS_MICROS=0):
        money.top_up(other, 20_000, reason="two cents", key="two-cents")
    html = studio_page(outsider)
    assert 'id="no-credit"' not in html
    assert DISABLED_FIBO in html and "Not enough credit: $0.02 available." in html
    assert '<button type="submit" class="primary">Remove background</button>' in html


def test_a_viewer_is_told_who_can_make_them_a_member(viewer, team):
    Membership.objects.create(team=team, user=make_user("adele"), role=Role.ADMIN)
    html = studio_page(viewer)
    assert 'id="viewer-note"' in html and "You are a <strong>viewer</strong> in Acme" in html
    assert "ask <strong>adele, olivia</strong> (the team's owners and admins) to make you a member." in html
    assert 'id="fibo-form"' not in html and 'id="rmbg-form"' not in html


def test_an_empty_team_is_still_refused_by_the_server(outsider):
    client = login(outsider)
    response = client.post("/studio/fibo/", VALID, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert "This costs $0.04 but the team wallet has only $0.00 available." in html
    assert DISABLED_FIBO in html  # the form comes back still disabled
    assert not Job.objects.exists()


# In a real browser.

@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_a_user_of_two_teams_lands_in_the_last_used_one_and_follows_a_link_across(
        browser, live_server, two_teams, acme_things):  # noqa: F811
    laptop = browser.new_context(viewport=DESKTOP).new_page()
    log_in(laptop, live_server.url, two_teams.username)
    expect(laptop.locator(".team-current .team")).to_have_text("Acme")
    laptop.click(".team-switch summary")
    laptop.click(".team-switch-menu button[value=other]")
    expect(laptop.locator(".team-current .team")).to_have_text("Other")
    laptop.context.close()

    phone = browser.new_context(viewport=PHONE).new_page()  # another device, another login
    log_in(phone, live_server.url, two_teams.username)
    expect(phone.locator(".team-current .team")).to_have_text("Other")
    url = f"{live_server.url}/library/{acme_things['asset'].code}/"
    phone.goto(url)
    assert phone.url == url
    expect(phone.locator(".flash")).to_contain_text(SWITCHED)
    expect(phone.locator(".team-current .team")).to_have_text("Acme")
    expect(phone.locator(".asset-figure img")).to_be_visible()
    phone.context.close()


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_the_no_team_page_and_an_empty_wallet_at_both_widths(browser, live_server, outsider):  # noqa: F811
    errors = []
    nora = make_user("nora")
    shoot(browser, f"{live_server.url}/", "no-team", session_cookies(nora, live_server.url), errors)
    shoot(browser, f"{live_server.url}/studio/", "empty-wallet", session_cookies(outsider, live_server.url), errors)
    assert errors == []

    page = browser.new_context(viewport=PHONE).new_page()
    page.context.add_cookies(session_cookies(outsider, live_server.url))
    page.goto(f"{live_server.url}/studio/")
    expect(page.locator("#no-credit")).to_contain_text("Other has no credit")
    for form, reason in (("#fibo-form", "#fibo-why"), ("#rmbg-form", "#rmbg-why")):
        expect(page.locator(f"{form} button[type=submit]")).to_be_disabled()
        expect(page.locator(reason)).to_have_text("Not enough credit: $0.00 available.")
    page.context.close()


def session_cookies(user, base_url):
    """A browser session for `user`, without the login form."""
    session = login(user).cookies[settings.SESSION_COOKIE_NAME].value
    return [{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": base_url}]

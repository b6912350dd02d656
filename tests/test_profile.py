"""The profile page (one person's account across their teams: email, password, 2FA,
teams, the API keys acting as them, revoked where roles.py allows) and what the team
page shows its owners alone of each member (email verified or not, 2FA on or off)."""

import uuid
from pathlib import Path

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from django.test import Client
from playwright.sync_api import expect

from studio.accounts.models import Membership, Role, Team
from studio.activity.models import Event
from studio.api.models import APIKey
from tests.conftest import login, make_user
from tests.test_accounts import address, mail  # noqa: F401  (the fixture)
from tests.test_browser import browser, log_in  # noqa: F401  (the fixture)
from tests.test_browser_journey import DESKTOP, PHONE, watch_console


@pytest.fixture
def cast(team, owner, member, viewer, outsider):
    """acme's four roles; mark is also a member of oscar's team `other`."""
    admin = make_user("adele")
    Membership.objects.create(team=team, user=admin, role=Role.ADMIN)
    other = Team.objects.get(slug="other")
    Membership.objects.create(team=other, user=member, role=Role.MEMBER)
    return {"owner": owner, "admin": admin, "member": member, "viewer": viewer, "outsider": outsider, "other": other}


def page(user):
    response = login(user).get("/accounts/profile/")
    assert response.status_code == 200
    return response.content.decode()


def row(body, row_id):
    """One table row of a page, by its id."""
    return body.split(f'id="{row_id}"', 1)[1].split("</tr>", 1)[0]


def verify(user):
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)


def enrol(user):
    Authenticator.objects.create(user=user, type=Authenticator.Type.TOTP, data={"secret": "not-used-here"})


# -- the page --------------------------------------------------------------------------------

@pytest.mark.parametrize("role", ["owner", "admin", "member", "viewer"])
def test_each_role_sees_their_own_account(cast, role):
    user = cast[role]
    body = page(user)
    assert f"<h1>{user.username}</h1>" in body and f"{user.username}@example.com" in body
    assert "not verified" in body and 'name="action_send"' in body  # no EmailAddress row yet
    assert 'href="/accounts/email/"' in body and 'href="/accounts/password/change/"' in body
    assert 'id="profile-2fa"' in body and ">off<" in body and 'href="/accounts/2fa/"' in body
    assert f'<span class="badge badge-role-{role}">' in body
    assert 'href="/accounts/profile/"' in body  # the top bar's username


def test_a_verified_email_and_2fa_say_so(cast):
    owner = cast["owner"]
    verify(owner)
    enrol(owner)
    body = page(owner)
    assert "verified</span>" in body and "not verified" not in body and 'name="action_send"' not in body
    assert '<span class="badge badge-completed">on</span>' in body and ">Manage<" in body


def test_an_account_without_email_is_told_to_add_one(cast):
    member = cast["member"]
    member.email = ""
    member.save()
    body = page(member)
    assert "add one to be able to reset a forgotten password" in body and 'name="action_send"' not in body


def test_the_resend_button_queues_a_new_verification_email(cast, mail):  # noqa: F811
    member = cast["member"]
    # allauth sends one link per address every 3 minutes, counted in a cache that may
    # outlive the test (Redis): an address of this run's own.
    member.email = f"mark-{uuid.uuid4().hex[:12]}@example.com"
    member.save()
    assert 'name="action_send"' in page(member)
    client = Client(HTTP_HOST="127.0.0.1", REMOTE_ADDR=address())
    client.force_login(member)
    with mail.sending():
        response = client.post("/accounts/email/", {"email": member.email, "action_send": ""})
    assert response.status_code == 302
    [received] = mail.delivered()
    assert received.rcpt_tos == [member.email] and "/accounts/confirm-email/" in received.body


def test_the_teams_listed_are_the_user_s_own_with_a_switch(cast):
    body = page(cast["member"])
    assert "working here" in row(body, "team-acme") and 'value="acme"' not in row(body, "team-acme")
    other = row(body, "team-other")
    assert 'action="/teams/switch/"' in other and 'name="team" value="other"' in other
    outsider = page(cast["outsider"])
    assert 'id="team-other"' in outsider and 'id="team-acme"' not in outsider


def test_a_user_in_no_team_sees_how_to_join_one(db):
    assert "You are in no team" in page(make_user("nobody"))


def test_the_keys_listed_act_as_the_user_in_any_of_their_teams(cast, team):
    owner, member, other = cast["owner"], cast["member"], cast["other"]
    in_acme, _ = APIKey.issue(team, member, "acme script", created_by=owner)
    in_other, _ = APIKey.issue(other, member, "other script", created_by=cast["outsider"])
    APIKey.issue(team, owner, "olivia own", created_by=owner)
    revoked, _ = APIKey.issue(team, member, "retired script", created_by=owner)
    revoked.revoke(owner)
    body = page(member)
    assert "acme script" in body and "other script" in body
    assert "olivia own" not in body and "retired script" not in body
    assert ">Other</td>" in row(body, f"key-{in_other.code}") and ">Acme</td>" in row(body, f"key-{in_acme.code}")
    assert "olivia own" in page(owner) and "acme script" not in page(owner)


def test_the_profile_is_a_fixed_number_of_queries(cast, team, django_assert_num_queries):
    member, other = cast["member"], cast["other"]
    client = login(member)
    client.get("/accounts/profile/")  # warm the session
    # session, user; the header's memberships; the user's details, teams and keys
    with django_assert_num_queries(6):
        assert client.get("/accounts/profile/").status_code == 200
    for n in range(3):
        APIKey.issue(team, member, f"acme {n}", created_by=cast["owner"])
        APIKey.issue(other, member, f"other {n}", created_by=cast["outsider"])
        Membership.objects.create(team=Team.create_for(cast["outsider"], f"More {n}"), user=member)
    with django_assert_num_queries(6):
        assert client.get("/accounts/profile/").status_code == 200


def test_a_key_in_a_team_the_user_left_is_not_listed_nor_revocable(cast, team):
    member = cast["member"]
    key, _ = APIKey.issue(team, member, "old script", created_by=cast["owner"])
    team.leave(member)
    assert "old script" not in page(member)
    assert login(member).post(f"/accounts/profile/keys/{key.code}/revoke/").status_code == 404


# -- revoking from the profile -----------------------------------------------------------------

@pytest.mark.parametrize("role", ["owner", "admin"])
def test_owners_and_admins_revoke_their_own_keys(cast, team, role):
    user = cast[role]
    key, raw = APIKey.issue(team, user, "mine", created_by=user)
    assert f"/accounts/profile/keys/{key.code}/revoke/" in page(user)
    client = login(user)
    response = client.post(f"/accounts/profile/keys/{key.code}/revoke/")
    assert response.status_code == 302 and response["Location"] == "/accounts/profile/"
    key.refresh_from_db()
    assert key.revoked_at is not None and APIKey.authenticate(raw) is None
    assert Event.objects.filter(team=team, verb=Event.Verb.API_KEY_REVOKED, actor=user).exists()
    assert "is revoked" in client.get("/accounts/profile/").content.decode()


@pytest.mark.parametrize("role", ["member", "viewer"])
def test_members_and_viewers_may_not_revoke_their_own_keys(cast, team, role):
    user = cast[role]
    key, raw = APIKey.issue(team, user, "mine", created_by=cast["owner"])
    body = page(user)
    assert "mine" in body and "ask an owner or admin" in body
    assert f"/accounts/profile/keys/{key.code}/revoke/" not in body
    response = login(user).post(f"/accounts/profile/keys/{key.code}/revoke/")
    assert response.status_code == 403
    assert "owners and admins revoke API keys." in response.content.decode()
    key.refresh_from_db()
    assert key.revoked_at is None and APIKey.authenticate(raw) is not None


def test_a_key_of_another_of_the_user_s_teams_is_revoked_without_switching(cast, team):
    owner, other = cast["owner"], cast["other"]
    Membership.objects.create(team=other, user=owner, role=Role.ADMIN)
    key, _ = APIKey.issue(other, owner, "in other", created_by=cast["outsider"])
    client = login(owner)  # working in acme, her team used last
    assert "in other" in client.get("/accounts/profile/").content.decode()
    assert client.post(f"/accounts/profile/keys/{key.code}/revoke/").status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert Event.objects.filter(team=other, verb=Event.Verb.API_KEY_REVOKED, actor=owner).exists()
    assert "working here" in row(client.get("/accounts/profile/").content.decode(), "team-acme")
    assert "current_team" not in client.session  # no switch


@pytest.mark.parametrize("who", ["owner", "admin", "viewer", "outsider"])
def test_nobody_revokes_a_key_acting_as_someone_else_from_their_profile(cast, team, who):
    key, raw = APIKey.issue(team, cast["member"], "mark's script", created_by=cast["owner"])
    response = login(cast[who]).post(f"/accounts/profile/keys/{key.code}/revoke/")
    assert response.status_code == 404
    key.refresh_from_db()
    assert key.revoked_at is None


def test_bad_revocations_change_nothing(cast, team):
    owner = cast["owner"]
    key, _ = APIKey.issue(team, owner, "mine", created_by=owner)
    client = login(owner)
    assert client.get(f"/accounts/profile/keys/{key.code}/revoke/").status_code == 405
    assert client.post("/accounts/profile/keys/not-a-uuid/revoke/").status_code == 404
    assert client.post("/accounts/profile/keys/00000000-0000-0000-0000-000000000000/revoke/").status_code == 404
    key.refresh_from_db()
    assert key.revoked_at is None


def test_anonymous_visitors_are_sent_to_log_in(cast, team):
    key, _ = APIKey.issue(team, cast["owner"], "mine", created_by=cast["owner"])
    visitor = Client(HTTP_HOST="127.0.0.1")
    for response in (visitor.get("/accounts/profile/"), visitor.post(f"/accounts/profile/keys/{key.code}/revoke/")):
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    key.refresh_from_db()
    assert key.revoked_at is None


# -- the team page: owners see each member's email and 2FA ---------------------------------------

def test_owners_see_each_member_s_email_verification_and_2fa(cast):
    verify(cast["member"])
    enrol(cast["member"])
    body = login(cast["owner"]).get("/team/").content.decode()
    mark, vera = row(body, "member-mark"), row(body, "member-vera")
    assert "mark@example.com" in mark and ">verified<" in mark and "2FA on" in mark
    assert "vera@example.com" in vera and "not verified" in vera and "2FA off" in vera


@pytest.mark.parametrize("role", ["admin", "member", "viewer"])
def test_nobody_but_owners_sees_members_emails_or_2fa(cast, role):
    verify(cast["member"])
    enrol(cast["member"])
    body = login(cast[role]).get("/team/").content.decode()
    assert 'id="member-mark"' in body
    assert "@example.com" not in body and "2FA on" not in body and "2FA off" not in body and "verified" not in body


# -- in a browser ------------------------------------------------------------------------------

SHOTS = Path("/tmp/profile")


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_the_profile_page_at_desktop_and_phone_widths(browser, live_server, team, owner, outsider):  # noqa: F811
    other = Team.objects.get(slug="other")
    Membership.objects.create(team=other, user=owner, role=Role.MEMBER)
    verify(owner)
    key, _ = APIKey.issue(team, owner, "nightly catalogue script", created_by=owner)
    APIKey.issue(other, owner, "other's export", created_by=outsider)
    SHOTS.mkdir(parents=True, exist_ok=True)
    errors = []
    for label, viewport in (("1280", DESKTOP), ("390", PHONE)):
        context = browser.new_context(viewport=viewport)
        page = context.new_page()
        watch_console(page, errors)
        log_in(page, live_server.url, "olivia")
        page.click("a.who")  # the username in the top bar
        page.wait_for_url("**/accounts/profile/")
        expect(page.get_by_role("heading", name="olivia")).to_be_visible()
        page.screenshot(path=SHOTS / f"profile-{label}.png", full_page=True)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= viewport["width"], f"the page scrolls sideways at {label} px"
        page.goto(f"{live_server.url}/team/")
        page.screenshot(path=SHOTS / f"team-{label}.png", full_page=True)
        context.close()

    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    watch_console(page, errors)
    log_in(page, live_server.url, "olivia")
    page.goto(f"{live_server.url}/accounts/profile/")
    page.once("dialog", lambda dialog: dialog.accept())  # "Revoke …? Scripts using it stop working at once."
    page.locator(f"#key-{key.code}").get_by_role("button", name="Revoke").click()
    expect(page.locator("#flash")).to_contain_text("is revoked")
    expect(page.locator(f"#key-{key.code}")).to_have_count(0)
    context.close()
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert errors == [], errors


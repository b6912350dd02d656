"""Teams that work together: invitations by link and by email, roles and who may change
them, leaving, handing over ownership, deleting (or archiving) a team, and switching
between teams. Every change records its event; another team's members and invitations
are a 404; a role that may not do something gets a 403 and changes nothing."""

import datetime
import hashlib
import io
import re
from types import SimpleNamespace

import pytest
from allauth.account.models import EmailAddress
from django.conf import settings
from django.contrib.auth.models import User
from django.core import mail
from django.shortcuts import resolve_url
from django.test import Client, override_settings
from django.utils import timezone
from PIL import Image

from jobs.actions import start_fibo
from studio.accounts.models import Invitation, Membership, Role, Team
from studio.accounts.roles import Refused
from studio.activity.models import Event
from studio.billing import money
from studio.api.models import APIKey
from studio.billing.models import Entry
from studio.gallery.models import Gallery, ShareLink
from studio.library import media
from studio.library.models import Asset
from tests.conftest import login, make_user
from tests.smtp import run_queued_email

BASE = "https://studio.example"
TOKEN_URL = re.compile(r"https://studio\.example/invitations/([A-Za-z0-9_-]{43})/")
PARAMS = {"prompt": "a lighthouse at dusk", "aspect_ratio": "1:1", "seed": 7, "steps_num": 30, "guidance_scale": "5"}


@pytest.fixture(autouse=True)
def fast_settings(settings):
    settings.PUBLIC_BASE_URL = BASE
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


@pytest.fixture
def admin(team):
    user = make_user("adam")
    Membership.objects.create(team=team, user=user, role=Role.ADMIN)
    return user


@pytest.fixture
def newcomer(db):
    """Someone with an account (and their own team) but not in acme."""
    user = make_user("nina")
    Team.create_for(user, "Nina's studio", slug="nina")
    return user


def invite(client, **data):
    """Post an invitation; returns (response, token shown on the page or None)."""
    response = client.post("/team/invitations/", {"role": "member", "days": "7", "email": "", **data})
    match = TOKEN_URL.search(response.content.decode())
    return response, match and match.group(1)


@pytest.fixture
def token(team, owner):
    _, token = team.invite(owner, Role.VIEWER)
    return token


def role_of(team, user):
    return Membership.objects.get(team=team, user=user).role


def events(team, verb):
    return list(Event.objects.filter(team=team, verb=verb).select_related("actor").order_by("id"))


# -- inviting ------------------------------------------------------------------------

def test_an_owner_invites_by_link_and_sees_the_link_once(team, owner, empty_queue, django_capture_on_commit_callbacks):
    client = login(owner)
    with django_capture_on_commit_callbacks(execute=True):
        response, token = invite(client, role="admin")
    assert response.status_code == 200 and token
    assert response["Cache-Control"] == "private, no-store"
    invitation = Invitation.objects.get(team=team)
    assert invitation.role == Role.ADMIN and invitation.email == "" and invitation.invited_by == owner
    assert invitation.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(Invitation.objects.values_list().get())  # only the hash is stored
    assert timezone.now() + datetime.timedelta(days=6, hours=23) < invitation.expires_at
    assert run_queued_email() == [] and mail.outbox == []
    page = client.get("/team/").content.decode()
    assert token not in page and "by link" in page and f"/team/invitations/{invitation.code}/revoke/" in page
    [event] = events(team, Event.Verb.INVITED)
    assert event.actor == owner and event.data["role"] == "admin" and event.data["invitation"] == str(invitation.code)


def test_an_admin_invites_by_email(team, admin, empty_queue, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response, token = invite(login(admin), email="new.person@example.com", role="viewer", days="3")
    assert response.status_code == 200
    assert "The invitation is on its way to new.person@example.com." in response.content.decode()
    assert mail.outbox == []  # queued, not sent by the request
    assert run_queued_email() == ["sent"]
    [message] = mail.outbox
    assert message.to == ["new.person@example.com"]
    assert message.subject == "adam invited you to Acme on Bria Studio"
    assert f"{BASE}/invitations/{token}/" in message.body and "as a viewer" in message.body
    invitation = Invitation.objects.get(team=team)
    assert invitation.email == "new.person@example.com" and invitation.role == Role.VIEWER
    assert invitation.expires_at < timezone.now() + datetime.timedelta(days=3, minutes=1)
    assert events(team, Event.Verb.INVITED)[0].actor == admin


def test_only_an_owner_invites_an_admin(team, admin):
    response, _ = invite(login(admin), role="admin")
    assert response.status_code == 403
    assert not Invitation.objects.exists() and not events(team, Event.Verb.INVITED)


def test_members_and_viewers_cannot_invite(team, member, viewer):
    for user in (member, viewer):
        assert invite(login(user), role="viewer")[0].status_code == 403
    assert not Invitation.objects.exists()
    assert "/team/invitations/" not in login(member).get("/team/").content.decode()


@pytest.mark.parametrize("data, field, message", [
    ({"email": "not-an-address"}, "email", "Enter a valid email address."),
    ({"role": "boss"}, "role", "Choose viewer, member or admin."),
    ({"days": "0"}, "days", "greater than or equal to 1"),
])
def test_bad_invitation_input_is_shown_next_to_the_field(team, owner, data, field, message, empty_queue,
                                                         django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response, token = invite(login(owner), **data)
    assert response.status_code == 400 and token is None
    assert message in response.content.decode()
    assert field in response.context["invite_form"].errors
    assert not Invitation.objects.exists() and run_queued_email() == [] and mail.outbox == []


def test_nobody_invites_an_owner(team, owner):
    response, token = invite(login(owner), role="owner")
    assert response.status_code == 403 and token is None
    assert "Ownership moves only by transfer" in response.content.decode()
    assert not Invitation.objects.exists() and not events(team, Event.Verb.INVITED)


def test_a_manager_revokes_only_invitations_they_could_have_made(team, owner, admin):
    invitation, _ = team.invite(owner, Role.ADMIN)
    response = login(admin).post(f"/team/invitations/{invitation.code}/revoke/")
    assert response.status_code == 403
    assert "Only the team&#x27;s owners can make someone an admin." in response.content.decode()
    invitation.refresh_from_db()
    assert invitation.revoked_at is None


# -- accepting -----------------------------------------------------------------------

def test_accepting_joins_with_the_role_and_switches_to_the_team(team, owner, newcomer, token):
    client = login(newcomer)
    page = client.get(f"/invitations/{token}/")
    assert page.status_code == 200 and page["Referrer-Policy"] == "same-origin"
    assert "Join Acme as viewer" in page.content.decode() and "olivia" in page.content.decode()
    response = client.post(f"/invitations/{token}/")
    assert response.status_code == 302 and response["Location"] == "/team/"
    assert role_of(team, newcomer) == Role.VIEWER
    assert client.session["current_team"] == "acme"
    assert '<h1>Acme</h1>' in client.get("/team/").content.decode()
    invitation = Invitation.objects.get()
    assert invitation.accepted_by == newcomer and invitation.accepted_at is not None
    [event] = events(team, Event.Verb.JOINED)
    assert event.actor == newcomer and event.data == {"member": "nina", "role": "viewer", "invitation": str(invitation.code)}


def test_an_invitation_works_once(team, newcomer, outsider, token):
    assert login(newcomer).post(f"/invitations/{token}/").status_code == 302
    client = login(outsider)
    for response in (client.get(f"/invitations/{token}/"), client.post(f"/invitations/{token}/")):
        assert response.status_code == 404 and "This invitation is not valid" in response.content.decode()
    assert not team.memberships.filter(user=outsider).exists()


def test_an_expired_invitation_is_not_valid(team, newcomer, token):
    Invitation.objects.update(expires_at=timezone.now() - datetime.timedelta(seconds=1))
    client = login(newcomer)
    assert client.get(f"/invitations/{token}/").status_code == 404
    assert client.post(f"/invitations/{token}/").status_code == 404
    assert not team.memberships.filter(user=newcomer).exists() and not events(team, Event.Verb.JOINED)


def test_a_revoked_invitation_is_not_valid(team, owner, newcomer, token):
    invitation = Invitation.objects.get()
    response = login(owner).post(f"/team/invitations/{invitation.code}/revoke/")
    assert response.status_code == 302 and response["Location"] == "/team/"
    invitation.refresh_from_db()
    assert invitation.revoked_at is not None
    assert login(newcomer).get(f"/invitations/{token}/").status_code == 404
    assert login(newcomer).post(f"/invitations/{token}/").status_code == 404
    assert "No pending invitations." in login(owner).get("/team/").content.decode()


def test_only_managers_revoke_and_only_their_own_teams_invitations(team, member, outsider, token):
    invitation = Invitation.objects.get()
    assert login(member).post(f"/team/invitations/{invitation.code}/revoke/").status_code == 403
    assert login(outsider).post(f"/team/invitations/{invitation.code}/revoke/").status_code == 404
    assert login(outsider).get(f"/team/invitations/{invitation.code}/revoke/").status_code == 405
    invitation.refresh_from_db()
    assert invitation.revoked_at is None


def test_an_unknown_token_is_not_valid(newcomer):
    for client in (Client(), login(newcomer)):
        response = client.get("/invitations/not-a-real-token/")
        assert response.status_code == 404 and "This invitation is not valid" in response.content.decode()


def test_an_invitation_to_someone_already_in_the_team_changes_nothing(team, member, token):
    client = login(member)
    assert "You are already in Acme" in client.get(f"/invitations/{token}/").content.decode()
    response = client.post(f"/invitations/{token}/", follow=True)
    assert "You are already in Acme; nothing changed." in response.content.decode()
    assert role_of(team, member) == Role.MEMBER
    assert Invitation.objects.pending().count() == 1 and not events(team, Event.Verb.JOINED)


def test_a_logged_out_visitor_logs_in_and_comes_back_to_the_invitation(team, newcomer, token):
    client = Client()
    page = client.get(f"/invitations/{token}/").content.decode()
    assert "Join Acme" in page and f"/accounts/login/?next=%2Finvitations%2F{token}%2F" in page
    assert 'href="/accounts/signup/"' in page
    response = client.post(f"/invitations/{token}/")
    assert response.status_code == 302 and response["Location"] == f"/accounts/login/?next=/invitations/{token}/"
    assert not team.memberships.filter(user=newcomer).exists()
    response = client.post("/accounts/login/", {"login": "nina", "password": "pw-for-tests-only",
                                                "next": f"/invitations/{token}/"})
    assert response.status_code == 302 and response["Location"] == f"/invitations/{token}/"
    assert client.post(response["Location"]).status_code == 302
    assert role_of(team, newcomer) == Role.VIEWER
    assert client.get("/studio/").context["team"] == team  # switched from their own team


SAM = {"username": "sam", "email": "sam@example.com", "password1": "a-long-pass-phrase-77",
       "password2": "a-long-pass-phrase-77"}


def test_a_visitor_signs_up_from_an_invitation_and_is_in_the_team_at_once(team, token):
    client = Client()
    client.get(f"/invitations/{token}/")
    form = client.get("/accounts/signup/")
    assert "You join <strong>Acme</strong> as viewer" in form.content.decode()
    assert "team_name" not in form.context["form"].fields  # no personal team to name
    response = client.post("/accounts/signup/", SAM)
    assert response.status_code == 302 and response["Location"] == resolve_url(settings.LOGIN_REDIRECT_URL)
    sam = User.objects.get(username="sam")
    assert [m.team for m in sam.memberships.all()] == [team] and role_of(team, sam) == Role.VIEWER
    assert "Acme" in client.get("/studio/").content.decode()
    assert Invitation.find_valid(token) is None
    assert client.get(f"/invitations/{token}/").status_code == 404  # used


def test_an_emailed_invitation_prefills_its_address_and_counts_it_verified(team, owner):
    invitation, token = team.invite(owner, Role.MEMBER, email="sam@example.com")
    client = Client()
    client.get(f"/invitations/{token}/")
    assert client.get("/accounts/signup/").context["form"]["email"].value() == "sam@example.com"
    assert client.post("/accounts/signup/", SAM).status_code == 302
    assert EmailAddress.objects.get(user__username="sam").verified
    assert role_of(team, User.objects.get(username="sam")) == Role.MEMBER


def test_an_invitation_that_died_before_the_sign_up_leaves_a_personal_team(team, token):
    client = Client()
    client.get(f"/invitations/{token}/")
    Invitation.objects.update(revoked_at=timezone.now())
    assert client.post("/accounts/signup/", SAM).status_code == 302
    assert [m.team.slug for m in User.objects.get(username="sam").memberships.all()] == ["sam"]


def test_signup_ignores_a_next_on_another_site(db):
    response = Client().post("/accounts/signup/", {**SAM, "next": "https://evil.example/"})
    assert response.status_code == 302 and response["Location"] == resolve_url(settings.LOGIN_REDIRECT_URL)


# -- roles ---------------------------------------------------------------------------

def change_role(user, username, role):
    return login(user).post(f"/team/members/{username}/role/", {"role": role})


def test_an_owner_makes_and_unmakes_admins(team, owner, member):
    assert change_role(owner, "mark", "admin").status_code == 302
    assert role_of(team, member) == Role.ADMIN
    assert change_role(owner, "mark", "viewer").status_code == 302
    assert role_of(team, member) == Role.VIEWER
    first, second = events(team, Event.Verb.ROLE_CHANGED)
    assert first.actor == owner and first.data == {"member": "mark", "old": "member", "new": "admin"}
    assert second.data == {"member": "mark", "old": "admin", "new": "viewer"}


def test_an_admin_changes_members_and_viewers_only(team, owner, admin, member, viewer):
    assert change_role(admin, "mark", "viewer").status_code == 302
    assert change_role(admin, "vera", "member").status_code == 302
    assert (role_of(team, member), role_of(team, viewer)) == (Role.VIEWER, Role.MEMBER)
    assert change_role(admin, "vera", "admin").status_code == 403  # only owners make admins
    other_admin = make_user("alex")
    Membership.objects.create(team=team, user=other_admin, role=Role.ADMIN)
    assert change_role(admin, "alex", "member").status_code == 403  # nor touch them
    assert change_role(admin, "olivia", "member").status_code == 403
    assert change_role(admin, "adam", "member").status_code == 403  # not even themselves
    assert role_of(team, viewer) == Role.MEMBER and role_of(team, other_admin) == Role.ADMIN
    assert role_of(team, owner) == Role.OWNER and role_of(team, admin) == Role.ADMIN
    assert [e.actor for e in events(team, Event.Verb.ROLE_CHANGED)] == [admin, admin]


def test_nobody_changes_an_owners_role(team, owner, member):
    assert change_role(owner, "olivia", "admin").status_code == 403
    second_owner = make_user("otto")
    Membership.objects.create(team=team, user=second_owner, role=Role.OWNER)
    assert change_role(owner, "otto", "member").status_code == 403
    assert role_of(team, owner) == role_of(team, second_owner) == Role.OWNER
    response = change_role(owner, "mark", "owner")  # ownership moves only by transfer
    assert response.status_code == 403 and "Ownership moves only by transfer" in response.content.decode()
    assert role_of(team, member) == Role.MEMBER and not events(team, Event.Verb.ROLE_CHANGED)


def test_members_and_viewers_cannot_change_roles(team, member, viewer):
    assert change_role(member, "vera", "member").status_code == 403
    assert change_role(viewer, "mark", "viewer").status_code == 403
    assert (role_of(team, member), role_of(team, viewer)) == (Role.MEMBER, Role.VIEWER)


def test_a_bad_role_is_shown_next_to_the_member(team, owner, member):
    response = change_role(owner, "mark", "boss")
    assert response.status_code == 400
    assert response.context["rows"][1]["role_form"].errors["role"]
    assert role_of(team, member) == Role.MEMBER


def test_the_team_page_offers_only_what_the_role_may_do(team, owner, admin, member, viewer):
    owner_page = login(owner).get("/team/").content.decode()
    assert "/team/members/adam/role/" in owner_page and "/team/members/olivia/role/" not in owner_page
    assert "/team/transfer/" in owner_page and "/team/delete/" in owner_page
    admin_page = login(admin).get("/team/").content.decode()
    assert "/team/members/mark/role/" in admin_page and "/team/members/adam/role/" not in admin_page
    assert '<option value="admin"' not in admin_page and "/team/transfer/" not in admin_page
    member_page = login(member).get("/team/").content.decode()
    assert "/role/" not in member_page and "/remove/" not in member_page and "/team/leave/" in member_page


# -- spend caps ----------------------------------------------------------------------

def set_cap(user, username, dollars):
    return login(user).post(f"/team/members/{username}/cap/", {"monthly_cap": dollars})


def cap_of(team, user):
    return Membership.objects.get(team=team, user=user).monthly_cap


def test_an_admin_cannot_clear_or_raise_their_own_cap(team, owner, admin):
    assert set_cap(owner, "adam", "50").status_code == 302
    for dollars in ("", "500", "10"):
        response = set_cap(admin, "adam", dollars)
        assert response.status_code == 403
        assert "Nobody but an owner sets their own spend cap: ask an owner." in response.content.decode()
    assert cap_of(team, admin) == 50_000_000
    assert [e.actor for e in events(team, Event.Verb.CAP_CHANGED)] == [owner]


def test_an_admin_caps_neither_an_owner_nor_another_admin(team, owner, admin, membership):
    Membership.objects.create(team=team, user=make_user("alex"), role=Role.ADMIN)
    response = set_cap(admin, "olivia", "0")
    assert response.status_code == 403
    assert "Only the team&#x27;s owners can set the spend cap of an owner." in response.content.decode()
    assert set_cap(admin, "alex", "0").status_code == 403
    assert cap_of(team, owner) is None and team.memberships.get(user__username="alex").monthly_cap is None
    assert start_fibo(team.memberships.get(user=owner), PARAMS)  # the owner is not blocked
    assert not events(team, Event.Verb.CAP_CHANGED)


def test_an_owner_caps_anyone_themselves_included(team, owner, admin, member):
    assert set_cap(owner, "olivia", "50").status_code == 302
    assert set_cap(owner, "adam", "0").status_code == 302
    assert set_cap(owner, "olivia", "").status_code == 302
    assert (cap_of(team, owner), cap_of(team, admin)) == (None, 0)
    assert [(e.summary, e.data["cap"]) for e in events(team, Event.Verb.CAP_CHANGED)] == [
        ("olivia: $50.00", 50_000_000), ("adam: $0.00", 0), ("olivia: no cap", None)]


def test_the_model_keeps_the_cap_rule_when_a_view_is_raced(team, owner, admin):
    """Two requests at once: the admin's page was allowed, then they lost the right."""
    with pytest.raises(Refused, match="Only the team's owners can set the spend cap of an owner"):
        team.set_cap(owner, 0, admin)
    with pytest.raises(Refused, match="Nobody but an owner sets their own spend cap"):
        team.set_cap(admin, None, admin)
    assert cap_of(team, owner) is None and not events(team, Event.Verb.CAP_CHANGED)


def test_the_team_page_offers_caps_only_where_they_may_be_set(team, owner, admin, member):
    page = login(admin).get("/team/").content.decode()
    assert "/team/members/mark/cap/" in page
    assert "/team/members/adam/cap/" not in page and "/team/members/olivia/cap/" not in page
    page = login(owner).get("/team/").content.decode()
    assert all(f"/team/members/{name}/cap/" in page for name in ("olivia", "adam", "mark"))
    assert "/cap/" not in login(member).get("/team/").content.decode()


# -- removing and leaving -----------------------------------------------------------

def remove(user, username):
    return login(user).post(f"/team/members/{username}/remove/")


def test_owners_and_admins_remove_members_within_their_limits(team, owner, admin, member, viewer):
    assert remove(member, "vera").status_code == 403
    assert remove(admin, "olivia").status_code == 403
    assert remove(owner, "olivia").status_code == 403
    assert remove(admin, "vera").status_code == 302
    assert not team.memberships.filter(user=viewer).exists()
    assert remove(owner, "adam").status_code == 302
    assert list(team.memberships.values_list("user__username", flat=True).order_by("user__username")) == ["mark", "olivia"]
    first, second = events(team, Event.Verb.REMOVED_MEMBER)
    assert (first.actor, first.data) == (admin, {"member": "vera", "role": "viewer"})
    assert (second.actor, second.data) == (owner, {"member": "adam", "role": "admin"})


def test_an_admin_cannot_remove_another_admin(team, admin):
    Membership.objects.create(team=team, user=make_user("alex"), role=Role.ADMIN)
    assert remove(admin, "alex").status_code == 403
    assert team.memberships.filter(user__username="alex").exists()


def test_a_member_leaves_and_falls_back_to_their_other_team(team, member):
    Team.create_for(member, "Mark's side", slug="side")
    client = login(member)
    client.post("/teams/switch/", {"team": "acme"})
    response = client.post("/team/leave/")
    assert response.status_code == 302 and response["Location"] == "/studio/"
    assert not team.memberships.filter(user=member).exists()
    assert "<h1>Mark&#x27;s side</h1>" in client.get("/team/").content.decode()
    [event] = events(team, Event.Verb.LEFT)
    assert event.actor == member and event.data == {"member": "mark", "role": "member"}


def test_leaving_the_only_team_shows_the_no_team_page(team, viewer):
    client = login(viewer)
    assert client.post("/team/leave/").status_code == 302
    response = client.get("/studio/")
    assert response.status_code == 403 and "You are not in a team" in response.content.decode()
    assert "You left Acme." in response.content.decode()


def test_the_last_owner_cannot_leave(team, owner, member):
    client = login(owner)
    assert "hand over ownership above before you leave" in client.get("/team/").content.decode()
    assert client.post("/team/leave/").status_code == 403
    assert role_of(team, owner) == Role.OWNER and not events(team, Event.Verb.LEFT)
    Membership.objects.create(team=team, user=make_user("otto"), role=Role.OWNER)
    assert client.post("/team/leave/").status_code == 302
    assert not team.memberships.filter(user=owner).exists()


# -- handing over ownership ----------------------------------------------------------

def test_an_owner_hands_ownership_to_a_member(team, owner, member):
    response = login(owner).post("/team/transfer/", {"username": "mark"})
    assert response.status_code == 302
    assert (role_of(team, member), role_of(team, owner)) == (Role.OWNER, Role.ADMIN)
    [event] = events(team, Event.Verb.OWNERSHIP_TRANSFERRED)
    assert event.actor == owner and event.data == {"previous": "olivia", "owner": "mark"}
    assert login(owner).post("/team/transfer/", {"username": "mark"}).status_code == 403  # an admin now


@pytest.mark.parametrize("username", ["oscar", "nobody", ""])
def test_ownership_goes_only_to_another_member_of_the_team(team, owner, member, outsider, username):
    response = login(owner).post("/team/transfer/", {"username": username})
    assert response.status_code == 400
    assert response.context["transfer_form"].errors["username"]
    assert role_of(team, owner) == Role.OWNER and role_of(team, member) == Role.MEMBER
    assert not events(team, Event.Verb.OWNERSHIP_TRANSFERRED)


def test_ownership_goes_neither_to_oneself_nor_to_another_owner(team, owner, member):
    Membership.objects.create(team=team, user=make_user("otto"), role=Role.OWNER)
    client = login(owner)
    response = client.post("/team/transfer/", {"username": "olivia"})
    assert response.status_code == 403 and "You own the team already." in response.content.decode()
    response = client.post("/team/transfer/", {"username": "otto"})
    assert response.status_code == 403 and "They own the team already." in response.content.decode()
    assert role_of(team, owner) == Role.OWNER and not events(team, Event.Verb.OWNERSHIP_TRANSFERRED)
    menu = client.get("/team/").context["transfer_form"]["username"].field.widget.choices
    assert [value for value, _ in menu] == ["", "mark"]


def test_only_an_owner_hands_over_ownership(team, admin, member):
    assert login(admin).post("/team/transfer/", {"username": "mark"}).status_code == 403
    assert login(member).post("/team/transfer/", {"username": "mark"}).status_code == 403
    assert role_of(team, member) == Role.MEMBER


# -- deleting a team -----------------------------------------------------------------

@pytest.fixture
def spent_team(outsider):
    """Oscar's team `other`, which had money and spent it all: history, an empty wallet."""
    team = Team.objects.get(slug="other")
    with override_settings(FIRST_TOPUP_BONUS_MICROS=0):
        money.top_up(team, 40_000, reason="one image", key="other-credit")
    job = start_fibo(team.memberships.get(user=outsider), PARAMS)
    money.capture(job)
    team.wallet.refresh_from_db()
    assert (team.wallet.balance, team.wallet.held, team.ledger.count()) == (0, 0, 3)
    return team


def test_a_team_with_money_in_its_wallet_cannot_be_deleted(team, owner):
    client = login(owner)
    page = client.get("/team/delete/").content.decode()
    assert "The wallet still holds $1.00" in page and 'name="slug"' not in page
    response = client.post("/team/delete/", {"slug": "acme"})
    assert response.status_code == 409 and "cannot be deleted" in response.content.decode()
    team.refresh_from_db()
    assert team.archived_at is None and team.memberships.count() == 1


def test_a_team_with_money_history_is_archived_and_its_ledger_kept(spent_team, outsider, newcomer):
    Membership.objects.create(team=spent_team, user=newcomer, role=Role.MEMBER)
    _, token = spent_team.invite(outsider, Role.MEMBER)
    client = login(outsider)
    assert "archived" in client.get("/team/delete/").content.decode()
    response = client.post("/team/delete/", {"slug": "other"})
    assert response.status_code == 302 and response["Location"] == "/studio/"
    spent_team.refresh_from_db()
    assert spent_team.archived_at is not None and not spent_team.memberships.exists()
    assert Entry.objects.filter(team=spent_team).count() == 3 and spent_team.topups.count() == 1
    assert Invitation.objects.get(team=spent_team).revoked_at is not None
    assert login(newcomer).get(f"/invitations/{token}/").status_code == 404
    assert client.get("/studio/").status_code == 403  # oscar has no team left
    assert login(newcomer).post("/teams/switch/", {"team": "other"}).status_code == 404


@pytest.fixture
def shared(spent_team, outsider):
    """What `other` left open to the world: a share link to a gallery with an image, a
    signed URL of that image, and API keys for both of the studio's APIs."""
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "teal").save(buffer, "PNG")
    asset = Asset.from_bytes(buffer.getvalue(), team=spent_team, role="output")
    asset.save()
    gallery = Gallery.objects.create(team=spent_team, title="Launch", created_by=outsider)
    gallery.add(asset, outsider)
    link, token = ShareLink.create(gallery, outsider)
    key, raw = APIKey.issue(spent_team, outsider, "nightly", created_by=outsider)
    return SimpleNamespace(asset=asset, link=link, token=token, key=key, raw=raw,
                           signed=media.signed_media_url(asset).removeprefix(BASE))


def public_answers(shared):
    """What a stranger holding the links and the key gets, by path."""
    anyone, token, code = Client(), shared.token, shared.asset.code
    return {
        "share": anyone.get(f"/s/{token}/").status_code,
        "image": anyone.get(f"/s/{token}/assets/{code}/").status_code,
        "thumbnail": anyone.get(f"/s/{token}/assets/{code}/thumbnail/").status_code,
        "zip": anyone.get(f"/s/{token}/download.zip").status_code,
        "signed": anyone.get(shared.signed).status_code,
        "api": Client(HTTP_AUTHORIZATION=f"Bearer {shared.raw}").get("/api/wallet").status_code,
        "gateway": anyone.get("/v2/requests/status/bria-fibo-bbq-preview_x",
                              HTTP_OCP_APIM_SUBSCRIPTION_KEY=shared.raw).status_code,
    }


CLOSED = {"share": 404, "image": 404, "thumbnail": 404, "zip": 404, "signed": 404, "api": 401, "gateway": 401}


def test_closing_a_team_revokes_its_share_links_and_api_keys(shared, spent_team, outsider, staff):
    assert public_answers(shared) == {**CLOSED, "share": 200, "image": 200, "thumbnail": 200, "zip": 200,
                                      "signed": 200, "api": 200, "gateway": 404}  # open while the team is
    assert login(outsider).post("/team/delete/", {"slug": "other"}).status_code == 302
    shared.link.refresh_from_db()
    shared.key.refresh_from_db()
    assert shared.link.revoked_at is not None and shared.key.revoked_at is not None
    assert public_answers(shared) == CLOSED
    audit = login(staff).get("/audit/?team=other").content.decode()
    assert "revoked a share link" in audit and "a link to “Launch”" in audit
    assert "revoked an API key" in audit and "“nightly”" in audit
    revoked = Event.objects.filter(team=spent_team, verb__in=[Event.Verb.SHARE_REVOKED, Event.Verb.API_KEY_REVOKED])
    assert sorted((e.verb, e.actor) for e in revoked) == [("api_key_revoked", outsider), ("share_revoked", outsider)]


def test_a_team_refused_closing_keeps_its_links_and_keys(shared, spent_team, outsider):
    with override_settings(FIRST_TOPUP_BONUS_MICROS=0):
        money.top_up(spent_team, 10_000, reason="a little left", key="other-left")
    assert login(outsider).post("/team/delete/", {"slug": "other"}).status_code == 409
    shared.link.refresh_from_db()
    shared.key.refresh_from_db()
    assert shared.link.revoked_at is None and shared.key.revoked_at is None
    assert not Event.objects.filter(team=spent_team, verb__in=[Event.Verb.SHARE_REVOKED, Event.Verb.API_KEY_REVOKED])


def test_every_public_lookup_refuses_an_archived_team(shared, spent_team):
    """A team archived before its links were revoked at closing (or by hand): the
    lookups themselves ask that the team be active."""
    Team.objects.filter(pk=spent_team.pk).update(archived_at=timezone.now())
    assert public_answers(shared) == CLOSED


def test_a_team_without_money_history_is_deleted(outsider, team, owner):
    other = Team.objects.get(slug="other")
    Membership.objects.create(team=other, user=owner, role=Role.MEMBER)
    other.invite(outsider, Role.VIEWER)  # its invitations and events go with it
    client = login(outsider)
    assert "deleted for good" in client.get("/team/delete/").content.decode()
    assert client.post("/team/delete/", {"slug": "other"}).status_code == 302
    assert not Team.objects.filter(slug="other").exists()
    assert not Invitation.objects.exists() and not Event.objects.filter(data__invitation__isnull=False).exists()
    assert not Membership.objects.filter(user=outsider).exists()
    assert Membership.objects.filter(user=owner).count() == 1  # olivia is left with acme


def test_deleting_asks_for_the_slug_typed_exactly(outsider):
    client = login(outsider)
    for typed in ("", "Other", "acme"):
        response = client.post("/team/delete/", {"slug": typed})
        assert response.status_code == 400 and response.context["form"].errors["slug"]
    assert Team.objects.filter(slug="other", archived_at__isnull=True).exists()


def test_only_an_owner_deletes_the_team(team, admin, member):
    for user in (admin, member):
        assert login(user).get("/team/delete/").status_code == 403
        assert login(user).post("/team/delete/", {"slug": "acme"}).status_code == 403
    assert Team.objects.filter(slug="acme", archived_at__isnull=True).exists()


# -- switching teams -----------------------------------------------------------------

def test_a_member_switches_between_their_teams(team, member):
    Team.create_for(member, "Mark's side", slug="side")
    client = login(member)
    page = client.get("/team/").content.decode()
    assert '<h1>Acme</h1>' in page and 'name="team" value="side"' in page
    response = client.post("/teams/switch/", {"team": "side"})
    assert response.status_code == 302 and response["Location"] == "/studio/"
    assert client.session["current_team"] == "side"
    page = client.get("/team/").content.decode()
    assert "<h1>Mark&#x27;s side</h1>" in page and 'class="team" title="Current team: members and caps">Mark&#x27;s side' in page
    assert "olivia" not in page and 'name="team" value="acme"' in page
    assert client.get("/wallet/").context["wallet"].team.slug == "side"
    client.post("/teams/switch/", {"team": "acme"})
    assert "<h1>Acme</h1>" in client.get("/team/").content.decode()


def test_the_switcher_shows_only_for_several_teams(team, member):
    assert "/teams/switch/" not in login(member).get("/team/").content.decode()


def test_switching_only_goes_to_ones_own_teams(team, member, outsider):
    client = login(member)
    assert client.post("/teams/switch/", {"team": "other"}).status_code == 404
    assert client.post("/teams/switch/", {"team": "nowhere"}).status_code == 404
    assert client.post("/teams/switch/", {}).status_code == 404


@pytest.mark.parametrize("slug", ["ac\x00me", "\x00", "acme/../side", "acme side"])
def test_switching_to_a_name_that_is_no_slug_is_a_404_not_a_crash(team, member, slug):
    client = login(member)
    assert client.post("/teams/switch/", {"team": slug}).status_code == 404
    assert client.session.get("current_team") in (None, "acme")
    assert client.get("/teams/switch/").status_code == 405
    assert "current_team" not in client.session
    response = Client().post("/teams/switch/", {"team": "acme"})
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


# -- outsiders, strangers, and the page ----------------------------------------------

def test_an_outsider_gets_404_for_another_teams_members_and_invitations(team, owner, member, outsider, token):
    client = login(outsider)
    invitation = Invitation.objects.get()
    for url, data in [("/team/members/mark/role/", {"role": "viewer"}), ("/team/members/mark/remove/", {}),
                      ("/team/members/mark/cap/", {"monthly_cap": "1"}),
                      (f"/team/invitations/{invitation.code}/revoke/", {})]:
        assert client.post(url, data).status_code == 404, url
    assert client.post("/team/transfer/", {"username": "mark"}).status_code == 400  # not one of oscar's members
    assert role_of(team, member) == Role.MEMBER and Invitation.objects.pending().count() == 1


@pytest.mark.parametrize("method, url", [
    ("get", "/team/"), ("post", "/team/invitations/"), ("post", "/team/members/mark/role/"),
    ("post", "/team/members/mark/remove/"), ("post", "/team/transfer/"), ("post", "/team/leave/"),
    ("get", "/team/delete/"), ("post", "/team/delete/"), ("post", "/teams/switch/"),
    ("post", "/team/invitations/2b8f4c9e-7d4f-4f53-9c8e-0a6a7c1f2d3e/revoke/"),
])
def test_the_anonymous_are_sent_to_log_in(team, member, method, url):
    response = getattr(Client(), method)(url)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/?next=")


@pytest.mark.parametrize("url", ["/team/invitations/", "/team/members/mark/role/", "/team/members/mark/remove/",
                                 "/team/transfer/", "/team/leave/"])
def test_the_writes_refuse_get(team, owner, member, url):
    assert login(owner).get(url).status_code == 405


def test_the_team_page_is_a_fixed_number_of_queries(team, owner, member, viewer, django_assert_num_queries):
    client = login(owner)
    team.invite(owner, Role.MEMBER)
    client.get("/team/")  # warm the session
    # session, user, memberships; members, spend; invitations; transfer candidates
    with django_assert_num_queries(7):
        assert client.get("/team/").status_code == 200
    for n in range(5):
        Membership.objects.create(team=team, user=make_user(f"extra{n}"), role=Role.MEMBER)
        team.invite(owner, Role.VIEWER, email=f"extra{n}@example.com")
    with django_assert_num_queries(7):
        assert client.get("/team/").status_code == 200

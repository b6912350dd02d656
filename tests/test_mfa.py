"""Two-factor authentication (allauth.mfa): enrolment with a real authenticator code,
login asking the code, a recovery code that works once, new codes, turning it off; a
team whose owner requires it sends members without it to enrol (the APIs are not
affected); staff need it for the admin."""

import random
import re

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from django.test import Client

from studio.accounts.models import Membership, Role
from studio.activity.models import Event
from studio.api.models import APIKey
from tests import totp
from tests.conftest import login, make_user

PASSWORD = "pw-for-tests-only"
ENROL = "/accounts/2fa/totp/activate/"


def visitor():
    """A client address of its own: allauth's rate limits count per address."""
    return Client(HTTP_HOST="127.0.0.1", REMOTE_ADDR=f"203.0.{random.randrange(256)}.{random.randrange(1, 255)}")


def password_step(user):
    client = visitor()
    response = client.post("/accounts/login/", {"login": user.username, "password": PASSWORD})
    return client, response


def log_in(user, code=None):
    """Password, then (for someone enrolled) the code."""
    client, response = password_step(user)
    if response["Location"] == "/accounts/2fa/authenticate/":
        response = client.post("/accounts/2fa/authenticate/", {"code": code or totp.code(totp.secret_of(user), 1)})
    assert response.status_code == 302 and client.session.get("_auth_user_id") == str(user.pk)
    return client


def confirmed(client):
    """allauth asks the password again before any change to two-factor settings."""
    assert client.post("/accounts/reauthenticate/", {"password": PASSWORD}).status_code == 302
    return client


def logged_in(client):
    return "_auth_user_id" in client.session


def enabled(user):
    return set(Authenticator.objects.filter(user=user).values_list("type", flat=True))


# -- enrolment ------------------------------------------------------------------------------

def test_enrolment_takes_a_code_computed_from_the_secret_shown_and_gives_recovery_codes(member):
    client = confirmed(log_in(member))
    page = client.get(ENROL).content.decode()
    [secret] = re.findall(r'<code id="authenticator-secret">([A-Z2-7]+)</code>', page)
    assert 'class="brand"' in page and "data:image/svg+xml;base64," in page  # the studio's frame, a QR code

    refused = client.post(ENROL, {"code": totp.wrong_code(secret)})
    assert "Incorrect code." in refused.content.decode() and enabled(member) == set()

    response = client.post(ENROL, {"code": totp.code(secret)})
    assert response.status_code == 302 and response["Location"] == "/accounts/2fa/recovery-codes/"
    assert enabled(member) == {"totp", "recovery_codes"} and totp.secret_of(member) == secret
    codes = client.get("/accounts/2fa/recovery-codes/").content.decode()
    assert all(code in codes for code in totp.recovery_codes(member)) and len(totp.recovery_codes(member)) == 10
    assert "Authenticator app" in client.get("/accounts/2fa/").content.decode()


def test_enrolment_asks_the_password_again_first(member):
    client = log_in(member)
    response = client.get(ENROL)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/reauthenticate/")
    page = client.get(response["Location"]).content.decode()
    assert "Confirm it is you" in page and 'class="brand"' in page
    assert client.post(response["Location"], {"password": "wrong"}).status_code == 200
    assert confirmed(client).get(ENROL).status_code == 200


# -- login ----------------------------------------------------------------------------------

def test_login_asks_the_code_and_refuses_a_wrong_one_with_a_message(member):
    secret = totp.enrol(member)
    client, response = password_step(member)
    assert response["Location"] == "/accounts/2fa/authenticate/" and not logged_in(client)
    assert client.get("/studio/")["Location"].startswith("/accounts/login/")  # the password alone opens nothing

    refused = client.post("/accounts/2fa/authenticate/", {"code": totp.wrong_code(secret)})
    assert "Incorrect code." in refused.content.decode() and not logged_in(client)

    response = client.post("/accounts/2fa/authenticate/", {"code": totp.code(secret)})
    assert response.status_code == 302 and logged_in(client)
    assert client.get("/studio/").status_code == 200


def test_an_authenticator_code_works_once(member):
    secret = totp.enrol(member)
    log_in(member, code=totp.code(secret))
    client, _ = password_step(member)
    refused = client.post("/accounts/2fa/authenticate/", {"code": totp.code(secret)})
    assert "Incorrect code." in refused.content.decode() and not logged_in(client)


def test_a_recovery_code_logs_in_once(member):
    totp.enrol(member)
    first, *rest = totp.recovery_codes(member)
    log_in(member, code=first)
    assert totp.recovery_codes(member) == rest

    client, _ = password_step(member)
    refused = client.post("/accounts/2fa/authenticate/", {"code": first})
    assert "Incorrect code." in refused.content.decode() and not logged_in(client)


def test_new_recovery_codes_replace_the_old_ones(member):
    totp.enrol(member)
    old = totp.recovery_codes(member)
    client = confirmed(log_in(member))
    page = client.get("/accounts/2fa/recovery-codes/generate/").content.decode()
    assert "stop working at once" in page
    assert client.post("/accounts/2fa/recovery-codes/generate/")["Location"] == "/accounts/2fa/recovery-codes/"
    new = totp.recovery_codes(member)
    assert len(new) == 10 and not set(new) & set(old)

    client, _ = password_step(member)
    assert "Incorrect code." in client.post("/accounts/2fa/authenticate/", {"code": old[0]}).content.decode()


def test_turning_it_off_lets_the_password_alone_log_in(member):
    totp.enrol(member)
    client = confirmed(log_in(member))
    assert "Turn it off" in client.get("/accounts/2fa/totp/deactivate/").content.decode()
    assert client.post("/accounts/2fa/totp/deactivate/").status_code == 302
    assert enabled(member) == set()
    client, response = password_step(member)
    assert response["Location"] != "/accounts/2fa/authenticate/" and logged_in(client)


# -- a team's requirement -------------------------------------------------------------------

def require_2fa(user, value="on"):
    return login(user).post("/team/two-factor/", {"requires_2fa": value})


def test_an_owner_requires_two_factor_of_the_team_and_the_audit_log_says_so(team, owner):
    totp.enrol(owner)
    response = require_2fa(owner)
    assert response.status_code == 302 and response["Location"] == "/team/"
    team.refresh_from_db()
    event = Event.objects.get(team=team, verb=Event.Verb.TWO_FACTOR_CHANGED)
    assert team.requires_2fa and (event.actor, event.summary, event.data) == (owner, "required", {"requires_2fa": True})
    assert "Stop requiring it" in login(owner).get("/team/").content.decode()

    assert require_2fa(owner, "off").status_code == 302
    team.refresh_from_db()
    assert not team.requires_2fa and Event.objects.filter(verb=Event.Verb.TWO_FACTOR_CHANGED).count() == 2


def test_an_owner_without_two_factor_cannot_require_it(team, owner):
    response = require_2fa(owner)
    assert response.status_code == 400 and "for yourself first" in response.content.decode()
    team.refresh_from_db()
    assert not team.requires_2fa and not Event.objects.filter(verb=Event.Verb.TWO_FACTOR_CHANGED).exists()


@pytest.mark.parametrize("value", ["maybe", ""])
def test_a_bad_value_changes_nothing(team, owner, value):
    totp.enrol(owner)
    assert require_2fa(owner, value).status_code == 400
    team.refresh_from_db()
    assert not team.requires_2fa and not Event.objects.filter(verb=Event.Verb.TWO_FACTOR_CHANGED).exists()


@pytest.mark.parametrize("role", [Role.ADMIN, Role.MEMBER, Role.VIEWER])
def test_only_owners_require_it(team, role):
    user = make_user(f"someone-{role}")
    Membership.objects.create(team=team, user=user, role=role)
    totp.enrol(user)
    assert require_2fa(user).status_code == 403
    team.refresh_from_db()
    assert not team.requires_2fa
    assert "Stop requiring it" not in login(user).get("/team/").content.decode()


def test_while_required_a_member_without_it_is_sent_to_enrol_with_a_notice(team, member):
    team.requires_2fa = True
    team.save()
    client = confirmed(log_in(member))
    for path in ("/studio/", "/library/", "/team/", "/wallet/"):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"] == ENROL, path
    assert client.post("/studio/fibo/", {"prompt": "x"})["Location"] == ENROL  # nothing is done
    assert client.get("/studio/cards/", HTTP_HX_REQUEST="true")["HX-Redirect"] == ENROL
    page = client.get(ENROL).content.decode()
    assert "Acme requires two-factor authentication" in page

    secret = re.search(r'<code id="authenticator-secret">([A-Z2-7]+)</code>', page)[1]
    client.post(ENROL, {"code": totp.code(secret)})
    assert client.get("/studio/").status_code == 200


def test_while_required_a_member_with_an_unverified_email_is_told_to_verify_it_first(team, member):
    EmailAddress.objects.create(user=member, email=member.email, primary=True, verified=False)
    team.requires_2fa = True
    team.save()
    page = confirmed(log_in(member)).get("/studio/", follow=True)
    assert page.redirect_chain[-1][0] == "/accounts/2fa/"
    assert "until you have verified your email address" in page.content.decode() and enabled(member) == set()


def test_while_required_a_member_with_it_goes_on_and_other_teams_are_not_affected(team, member, outsider):
    team.requires_2fa = True
    team.save()
    totp.enrol(member)
    assert login(member).get("/studio/").status_code == 200
    assert login(outsider).get("/studio/").status_code == 200  # their own team requires nothing


def test_while_required_the_api_with_a_key_is_not_affected(team, member):
    team.requires_2fa = True
    team.save()
    _, raw = APIKey.issue(team, member, "script")
    response = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {raw}").get("/api/galleries")
    assert response.status_code == 200


# -- staff and the admin ---------------------------------------------------------------------

def test_staff_without_two_factor_are_sent_to_enrol_before_the_admin(db):
    stan = make_user("stanley", is_staff=True, is_superuser=True)
    client = login(stan)
    for path in ("/admin/", "/admin/accounts/team/"):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"] == ENROL, path
    assert "Staff use two-factor authentication for the admin" in client.get(ENROL, follow=True).content.decode()
    assert client.get("/reports/").status_code == 200  # the rest of the studio is open


def test_staff_with_two_factor_reach_the_admin_after_their_code(staff):
    client, response = password_step(staff)
    assert response["Location"] == "/accounts/2fa/authenticate/"
    assert client.get("/admin/", follow=True).redirect_chain[-1][0] == "/accounts/2fa/authenticate/"  # not yet
    client.post("/accounts/2fa/authenticate/", {"code": totp.code(totp.secret_of(staff))})
    assert client.get("/admin/").status_code == 200


def test_people_who_are_not_staff_are_not_sent_to_enrol_by_the_admin(member):
    response = login(member).get("/admin/")
    assert response.status_code == 302 and response["Location"] != ENROL

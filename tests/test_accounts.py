"""Accounts on django-allauth: sign-up (a personal team, a verification email from the
queue), login by username or email, password reset (single use, expiring, said so on a
studio page), password and email change, and failed-login limits per username and
address, so an attacker's guesses never lock the real user out."""

import random
import re
from datetime import datetime, timedelta

import pytest
from allauth.account.models import EmailAddress
from allauth.account.utils import user_pk_to_url_str
from django.contrib.auth.models import User
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.test import Client

from studio.accounts.models import Team
from tests.conftest import login
from tests.smtp import run_queued_email

PASSWORD = "pw-for-tests-only"
NEW_PASSWORD = "a-new-long-phrase-31"
NINA = {"username": "nina", "email": "nina@example.com", "password1": "a-long-secret-phrase-9",
        "password2": "a-long-secret-phrase-9", "team_name": "Nina's studio"}


def address():
    """A client address of its own: allauth's rate limits count per address (and in a
    cache that outlives a test), so no test spends another's allowance."""
    return f"198.51.{random.randrange(256)}.{random.randrange(1, 255)}"


def visitor(**extra):
    return Client(HTTP_HOST="127.0.0.1", REMOTE_ADDR=address(), **extra)


@pytest.fixture
def mail(smtp_server, empty_queue, django_capture_on_commit_callbacks):
    """Send what the queue holds, as the worker would, and return what reached the SMTP
    server; requests inside `mail.sending()` queue their emails on commit as in production."""

    class Mail:
        sending = staticmethod(lambda: django_capture_on_commit_callbacks(execute=True))

        @staticmethod
        def delivered(count=1):
            assert run_queued_email() == ["sent"] * count
            return smtp_server.wait_for(count)

    return Mail


def link(message, path):
    [url] = re.findall(rf"http://127\.0\.0\.1{path}[^\s]+/", message.body)
    return url.removeprefix("http://127.0.0.1")


# -- sign-up -------------------------------------------------------------------------------

def test_signing_up_alone_gives_a_personal_team_and_a_verification_email_through_the_queue(mail):
    client = visitor()
    with mail.sending():
        response = client.post("/accounts/signup/", NINA)
    assert response.status_code == 302 and client.session["_auth_user_id"]
    team = Team.objects.get(memberships__user__username="nina")
    assert (team.name, team.memberships.get().role, team.wallet.balance) == ("Nina's studio", "owner", 0)
    [received] = mail.delivered()
    assert received.rcpt_tos == ["nina@example.com"] and received.subject.startswith("[Bria Studio] ")
    confirm = link(received, "/accounts/confirm-email/")
    assert not EmailAddress.objects.get(email="nina@example.com").verified  # optional: logged in all the same
    page = client.get(confirm)
    assert "Confirm your email address" in page.content.decode() and 'class="brand"' in page.content.decode()
    assert client.post(confirm).status_code == 302
    assert EmailAddress.objects.get(email="nina@example.com").verified


@pytest.mark.parametrize("change, field", [
    ({"password2": "another-long-phrase-8"}, "password2"),
    ({"email": "not-an-address"}, "email"),
    ({"email": "olivia@example.com"}, "email"),  # someone's already
    ({"username": "olivia"}, "username"),
    ({"password1": "123", "password2": "123"}, "password1"),
])
def test_a_bad_sign_up_is_refused_on_its_field_and_creates_nothing(owner, change, field):
    response = visitor().post("/accounts/signup/", {**NINA, **change})
    assert response.status_code == 400 and response.context["form"].errors[field]
    assert not User.objects.filter(username="nina").exists() and Team.objects.count() == 0


def test_a_bad_confirmation_link_says_so_on_a_studio_page(db):
    page = visitor().get("/accounts/confirm-email/not-a-key/").content.decode()
    assert "This verification link is not valid" in page and 'class="brand"' in page


# -- login -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["mark", "mark@example.com", "MARK@example.com"])
def test_a_user_logs_in_by_username_or_email(member, name):
    client = visitor()
    response = client.post("/accounts/login/", {"login": name, "password": PASSWORD})
    assert response.status_code == 302 and client.session["_auth_user_id"] == str(member.pk)


def test_a_wrong_password_is_refused_with_a_message(member):
    response = visitor().post("/accounts/login/", {"login": "mark", "password": "wrong"})
    assert response.status_code == 200 and "not correct" in response.content.decode()


# -- password reset ---------------------------------------------------------------------------

def test_a_forgotten_password_is_reset_once_by_the_emailed_link(member, mail):
    client = visitor()
    with mail.sending():
        response = client.post("/accounts/password/reset/", {"email": "mark@example.com"})
    assert response.status_code == 302 and response["Location"] == "/accounts/password/reset/done/"
    [received] = mail.delivered()
    assert received.rcpt_tos == ["mark@example.com"]
    reset = link(received, "/accounts/password/reset/key/")
    page = client.get(reset, follow=True)
    assert "Choose a new password" in page.content.decode()
    form_url = page.redirect_chain[-1][0]
    response = client.post(form_url, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/accounts/password/reset/key/done/"
    member.refresh_from_db()
    assert member.check_password(NEW_PASSWORD)

    again = visitor().get(reset, follow=True).content.decode()
    assert "This reset link is not valid" in again and "used already" in again and 'class="brand"' in again
    assert visitor().post("/accounts/login/", {"login": "mark", "password": NEW_PASSWORD}).status_code == 302


def test_a_reset_link_older_than_three_hours_says_it_expired(member):
    class FourHoursAgo(PasswordResetTokenGenerator):
        def _now(self):
            return datetime.now() - timedelta(hours=4)

    token = FourHoursAgo().make_token(member)
    page = visitor().get(f"/accounts/password/reset/key/{user_pk_to_url_str(member)}-{token}/", follow=True)
    assert "This reset link is not valid" in page.content.decode() and "expired" in page.content.decode()
    member.refresh_from_db()
    assert member.check_password(PASSWORD)


def test_a_reset_for_a_bad_address_is_refused_on_its_field(member):
    response = visitor().post("/accounts/password/reset/", {"email": "not-an-address"})
    assert response.status_code == 200 and response.context["form"].errors["email"]


# -- changes while logged in -----------------------------------------------------------------

def test_a_user_changes_their_password_knowing_the_old_one(member):
    client = login(member)
    refused = client.post("/accounts/password/change/", {"oldpassword": "wrong", "password1": NEW_PASSWORD,
                                                           "password2": NEW_PASSWORD})
    assert refused.context["form"].errors["oldpassword"]
    member.refresh_from_db()
    assert member.check_password(PASSWORD)
    response = client.post("/accounts/password/change/", {"oldpassword": PASSWORD, "password1": NEW_PASSWORD,
                                                           "password2": NEW_PASSWORD})
    assert response.status_code == 302
    member.refresh_from_db()
    assert member.check_password(NEW_PASSWORD)
    assert client.get("/studio/").status_code == 200  # still logged in


def test_a_new_email_address_replaces_the_old_once_verified(member, mail):
    EmailAddress.objects.create(user=member, email="mark@example.com", primary=True, verified=True)
    client = login(member)
    with mail.sending():
        response = client.post("/accounts/email/", {"action_add": "", "email": "mark@new.example"})
    assert response.status_code == 302
    member.refresh_from_db()
    assert member.email == "mark@example.com"  # not before it is verified
    assert "Changing to" in client.get("/accounts/email/").content.decode()
    [received] = mail.delivered()
    assert received.rcpt_tos == ["mark@new.example"]
    assert client.post(link(received, "/accounts/confirm-email/")).status_code == 302
    member.refresh_from_db()
    assert member.email == "mark@new.example"
    assert list(EmailAddress.objects.filter(user=member).values_list("email", flat=True)) == ["mark@new.example"]


def test_another_account_s_address_is_never_taken_and_never_revealed(member, owner, mail):
    """The form does not say the address is someone's (that would reveal accounts); the
    link goes to that address's owner, and confirming it cannot move it to this account."""
    EmailAddress.objects.create(user=owner, email="olivia@example.com", primary=True, verified=True)
    EmailAddress.objects.create(user=member, email="mark@example.com", primary=True, verified=True)
    client = login(member)
    with mail.sending():
        assert client.post("/accounts/email/", {"action_add": "", "email": "olivia@example.com"}).status_code == 302
    [received] = mail.delivered()
    assert received.rcpt_tos == ["olivia@example.com"]
    page = client.get(link(received, "/accounts/confirm-email/")).content.decode()
    assert "Address already taken" in page
    member.refresh_from_db()
    assert member.email == "mark@example.com"
    assert EmailAddress.objects.get(email="olivia@example.com", verified=True).user == owner


def test_a_bad_new_address_is_refused_on_its_field(member):
    response = login(member).post("/accounts/email/", {"action_add": "", "email": "not-an-address"})
    assert response.context["form"].errors["email"]
    assert not EmailAddress.objects.filter(user=member).exclude(email="mark@example.com").exists()


# -- failed-login limits -------------------------------------------------------------------

def attempt(name, password, address, **extra):
    client = Client(HTTP_HOST="127.0.0.1", REMOTE_ADDR=address, **extra)
    return client.post("/accounts/login/", {"login": name, "password": password})


def test_an_attacker_s_failures_never_lock_the_real_user_out(member, owner, settings):
    attacker, real_user = address(), address()
    answers = [attempt("mark", "guess-%d" % n, attacker).status_code for n in range(20)]
    limit = settings.LOGIN_FAILURES_PER_USERNAME
    assert answers == [200] * limit + [429] * (20 - limit)
    refused = attempt("mark", PASSWORD, attacker)
    assert refused.status_code == 429 and "Too many failed login attempts" in refused.content.decode()
    assert attempt("mark", PASSWORD, real_user).status_code == 302  # the real user, elsewhere
    assert attempt("olivia", PASSWORD, attacker).status_code == 302  # and others behind the attacker's address


def test_the_limit_counts_the_username_whatever_its_case_or_form(member, settings):
    attacker = address()
    for name in ["mark", "MARK", "Mark", "mArk", "marK"][:settings.LOGIN_FAILURES_PER_USERNAME]:
        attempt(name, "wrong", attacker)
    assert attempt("mark", PASSWORD, attacker).status_code == 429


def test_behind_a_proxy_the_limit_counts_the_address_the_proxy_saw(member, settings):
    settings.CLIENT_IP_HEADER = "X-Forwarded-For"
    proxy, attacker = "10.0.0.2", address()
    for n in range(settings.LOGIN_FAILURES_PER_USERNAME):
        attempt("mark", "wrong", proxy, HTTP_X_FORWARDED_FOR=f"6.6.6.{n}, {attacker}")
    assert attempt("mark", PASSWORD, proxy, HTTP_X_FORWARDED_FOR=f"6.6.6.6, {attacker}").status_code == 429
    assert attempt("mark", PASSWORD, proxy, HTTP_X_FORWARDED_FOR=address()).status_code == 302


def test_a_new_user_joins_nobody_s_team_by_their_own_sign_up(team, owner):
    assert visitor().post("/accounts/signup/", {**NINA, "team_name": ""}).status_code == 302
    nina = User.objects.get(username="nina")
    assert [m.team.slug for m in nina.memberships.all()] == ["nina"]
    assert not team.memberships.filter(user=nina).exists()


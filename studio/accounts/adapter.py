"""The studio's hooks into django-allauth, which runs sign-up, login, email verification,
password reset and change, and email change.

- Email leaves through the queue like every other (studio/mail.py): allauth renders it,
  the worker sends it, so a dead mail server never slows a reset or a sign-up.
- Failed logins are counted per username and client address together, so an attacker
  guessing from one address slows only that pair, never the real user elsewhere.
- A new user joins the team whose invitation brought them (`remember_invitation`), or
  else gets a personal team of their own.
"""

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core import context as allauth_context
from django.contrib.sites.shortcuts import get_current_site
from django.db import transaction

from studio.accounts.models import Invitation, Team, TeamError
from studio.accounts.throttle import client_address
from studio.mail import queue_email

INVITATION_KEY = "pending_invitation"


def remember_invitation(request, invitation, token):
    """Someone opened an invitation's link logged out: a sign-up in this session joins
    its team, with the invited address filled in (and, kept as it is, verified)."""
    request.session[INVITATION_KEY] = token
    if invitation.email:
        DefaultAccountAdapter().stash_verified_email(request, invitation.email)


def pending_invitation(request):
    token = request.session.get(INVITATION_KEY)
    return Invitation.find_valid(token) if token else None


class AccountAdapter(DefaultAccountAdapter):
    def send_mail(self, template_prefix, email, context):
        """Rendered now, sent by the worker (see studio/mail.py)."""
        request = allauth_context.request
        context = {"request": request, "email": email, "current_site": get_current_site(request), **context}
        message = self.render_mail(template_prefix, email, context)
        queue_email(message.subject, message.body, message.to, message.from_email)

    def get_client_ip(self, request):
        return client_address(request)

    def _get_login_attempts_cache_key(self, request, **credentials):
        """allauth keys failed logins by the username (or email) alone; the address is
        added, so that its limit locks out one guesser, not the account."""
        return f"{super()._get_login_attempts_cache_key(request, **credentials)}:{self.get_client_ip(request)}"

    def save_user(self, request, user, form, commit=True):
        """The new user and their one team, together: the invitation's, else a personal
        one. Being their only team, it is the one they work in."""
        with transaction.atomic():
            user = super().save_user(request, user, form, commit)
            if self._join_invited_team(request, user) is None:
                Team.create_for(user, form.cleaned_data.get("team_name") or user.get_username())
        return user

    def _join_invited_team(self, request, user):
        invitation = pending_invitation(request)
        request.session.pop(INVITATION_KEY, None)
        if invitation is None:
            return None
        try:
            invitation.accept(user)
        except TeamError:  # used or revoked a moment ago
            return None
        return invitation.team

"""Failed logins, throttled. Past LOGIN_FAILURES_PER_USERNAME failures for one username,
or LOGIN_FAILURES_PER_ADDRESS from one client address, in the current window of
LOGIN_FAILURE_WINDOW_SECONDS, the login form is refused (429, with the form and the
reason) without the password being checked, until the window ends. A successful login
clears its username's count.

The counters live in the cache (Redis when the studio runs more than one web process)
and count in fixed windows like the API's rate limiter (studio/api/ratelimit.py): one
atomic increment per failure, and the refusal can say exactly when to come back. A
guesser straddling two windows gets at most twice the limit, still a handful of guesses
where a brute force needs millions.
"""

import hashlib
import math
import time

from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.forms.forms import NON_FIELD_ERRORS
from django.utils.translation import ngettext


def client_address(request):
    """REMOTE_ADDR, or behind a proxy the last address in CLIENT_IP_HEADER: the one the
    proxy in front of the studio saw (addresses before it are whatever the client sent)."""
    if settings.CLIENT_IP_HEADER:
        header = "HTTP_" + settings.CLIENT_IP_HEADER.upper().replace("-", "_")
        address = request.META.get(header, "").split(",")[-1].strip()
        if address:
            return address
    return request.META.get("REMOTE_ADDR", "")


def _counters(username, address, now):
    """(cache key, limit) for each count a login attempt is part of, in this window.
    Usernames and addresses are hashed: the keys stay short and safe whatever was typed."""
    window = int(now // settings.LOGIN_FAILURE_WINDOW_SECONDS)

    def digest(value):
        return hashlib.sha256(value.encode()).hexdigest()[:32]

    return [
        (f"login-fail:user:{digest(username.casefold())}:{window}", settings.LOGIN_FAILURES_PER_USERNAME),
        (f"login-fail:addr:{digest(address)}:{window}", settings.LOGIN_FAILURES_PER_ADDRESS),
    ]


def seconds_refused(username, address):
    """How long logins for this username from this address stay refused; 0: not refused."""
    now = time.time()
    counters = _counters(username, address, now)
    counts = cache.get_many([key for key, _ in counters])
    if all(counts.get(key, 0) < limit for key, limit in counters):
        return 0
    return max(1, math.ceil(settings.LOGIN_FAILURE_WINDOW_SECONDS - now % settings.LOGIN_FAILURE_WINDOW_SECONDS))


def record_failure(username, address):
    for key, _ in _counters(username, address, time.time()):
        cache.add(key, 0, timeout=settings.LOGIN_FAILURE_WINDOW_SECONDS)
        try:
            cache.incr(key)
        except ValueError:  # the counter expired between add and incr: this is its first failure
            cache.add(key, 1, timeout=settings.LOGIN_FAILURE_WINDOW_SECONDS)


def clear_failures(username):
    """Forget the username's failures (its address keeps its count)."""
    cache.delete(_counters(username, "", time.time())[0][0])


class ThrottledLogin:
    """For an authentication form: refuse while throttled, count the failures, clear the
    username's count on success."""

    retry_after = 0

    def clean(self):
        username = self.cleaned_data.get("username") or ""
        address = client_address(self.request)
        self.retry_after = seconds_refused(username, address)
        if self.retry_after:
            minutes = math.ceil(self.retry_after / 60)
            message = ngettext("Too many failed log-ins for this username or from your address. "
                               "Try again in %(minutes)d minute.",
                               "Too many failed log-ins for this username or from your address. "
                               "Try again in %(minutes)d minutes.", minutes)
            raise ValidationError(message, code="throttled", params={"minutes": minutes})
        try:
            cleaned_data = super().clean()
        except ValidationError as error:
            if error.code == "invalid_login":
                record_failure(username, address)
            raise
        clear_failures(username)
        return cleaned_data


class ThrottledAuthenticationForm(ThrottledLogin, AuthenticationForm):
    pass


class ThrottledAdminAuthenticationForm(ThrottledLogin, AdminAuthenticationForm):
    """The admin's own login page (/admin/login/), throttled the same way."""


class LoginView(auth_views.LoginView):
    form_class = ThrottledAuthenticationForm

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if form.has_error(NON_FIELD_ERRORS, "throttled"):
            response.status_code = 429
            response["Retry-After"] = str(form.retry_after)
        return response

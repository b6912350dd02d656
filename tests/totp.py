"""Authenticator codes as a phone's app computes them from the secret (allauth's own
arithmetic, RFC 6238), and enrolment straight in the database for tests about something
else (staff in the admin)."""

import time

from allauth.mfa import app_settings
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, generate_totp_secret, hotp_value
from allauth.mfa.utils import decrypt


def code(secret, step=0):
    """The code for now, or `step` periods on (allauth accepts one step either side, so
    step=1 gives a code not yet used that is valid now)."""
    counter = int(time.time()) // app_settings.TOTP_PERIOD + step
    return format_hotp_value(hotp_value(secret, counter))


def wrong_code(secret):
    """A code that is none of those valid around now."""
    valid = {code(secret, step) for step in (-1, 0, 1, 2)}
    return next(c for c in ("123456", "654321", "111111") if c not in valid)


def enrol(user):
    """An authenticator app and recovery codes for `user`; returns the app's secret."""
    secret = generate_totp_secret()
    TOTP.activate(user, secret)
    RecoveryCodes.activate(user)
    return secret


def secret_of(user):
    return decrypt(Authenticator.objects.get(user=user, type=Authenticator.Type.TOTP).data["secret"])


def recovery_codes(user):
    codes = Authenticator.objects.get(user=user, type=Authenticator.Type.RECOVERY_CODES)
    return RecoveryCodes(codes).get_unused_codes()

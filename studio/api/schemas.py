"""What every router of the native API shares: the error shape, money as exact dollars,
and the people and images that several resources point at."""

from decimal import Decimal

from ninja import Schema
from ninja.responses import codes_4xx

from studio.billing.models import MICROS_PER_DOLLAR


class FieldError(Schema):
    field: str
    message: str


class ErrorOut(Schema):
    error: str
    message: str
    details: list[FieldError] = []


# Every operation may answer any of these in the error shape (401 bad key, 403 role,
# 404 another team's object, 422 bad input, 429 rate limit…).
ERRORS = {codes_4xx: ErrorOut}


def usd(micros):
    """Integer micro-dollars → exact dollars, serialised as a string with at least two
    decimals ("15.00", "0.04", "0.018")."""
    dollars = (Decimal(micros) / MICROS_PER_DOLLAR).normalize()
    return dollars.quantize(Decimal("0.01")) if dollars.as_tuple().exponent > -2 else dollars


def username(user):
    return user.get_username() if user is not None else None

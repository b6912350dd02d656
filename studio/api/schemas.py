"""What every router of the native API shares: the error shape, money as exact dollars,
and the people and images that several resources point at."""

import datetime
import math
from decimal import Decimal
from typing import Annotated

from django.utils import timezone
from ninja import Field, Schema
from ninja.pagination import LimitOffsetPagination
from ninja.schema import DjangoGetter
from pydantic import BeforeValidator, ConfigDict, WithJsonSchema, field_validator, model_validator

from jobs.contract import is_text
from studio.billing.models import MICROS_PER_DOLLAR


class BodyIn(Schema):
    """A request body: a JSON object with only the documented fields. (Ninja's Schema
    would otherwise read fields off any value as attributes, so a bare string or list
    must be refused before it gets there.)"""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def an_object(cls, data):
        raw = data._obj if isinstance(data, DjangoGetter) else data  # ninja validates twice
        if not isinstance(raw, dict):
            raise ValueError("the body must be a JSON object")
        return data

    @field_validator("*")
    @classmethod
    def text_only(cls, value, info):
        """Every string field holds text the database can store: pydantic refuses a lone
        surrogate, and a NUL would be a 500 on PostgreSQL."""
        if isinstance(value, str) and not is_text(value):
            raise ValueError(f"{info.field_name} must be text without NUL characters or lone surrogates")
        return value


def _iso_datetime(value):
    """ISO 8601 only ("2026-11-24", "2026-11-24T09:30:00Z"); pydantic alone would also
    read "0.5" as a Unix time. A time without a zone is UTC."""
    if isinstance(value, datetime.datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("use an ISO 8601 date or time, e.g. 2026-11-24T09:30:00Z") from None
    else:
        raise ValueError("use an ISO 8601 date or time, e.g. 2026-11-24T09:30:00Z")
    moment = moment if timezone.is_aware(moment) else timezone.make_aware(moment, datetime.UTC)
    try:
        # In UTC: PostgreSQL refuses offsets past ±15:59, which ISO 8601 allows.
        return moment.astimezone(datetime.UTC)
    except OverflowError:
        raise ValueError("the date is out of range") from None


IsoDateTime = Annotated[datetime.datetime, BeforeValidator(_iso_datetime)]


def _json_integer(value):
    """A JSON integer: 30 or 30.0 (JSON Schema's integer), never true, "30" or 30.5."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be an integer")
    if isinstance(value, float) and (not math.isfinite(value) or value != int(value)):
        raise ValueError("must be an integer")
    return int(value)


JsonInt = Annotated[int, BeforeValidator(_json_integer)]


def contract_field(python_type, check, json_schema):
    """A body field judged by one of the gateway contract's checks (jobs/contract.py):
    the same rule and the same message as the studio's form and both gateway APIs, its
    ValueError reported in `details`. OpenAPI shows `json_schema`, which must accept
    everything the check accepts (schemathesis holds it to that)."""
    return Annotated[python_type, BeforeValidator(check), WithJsonSchema(json_schema)]


class Pages(LimitOffsetPagination):
    """`limit` (1–100, default 50) and `offset`, bounded so a huge offset is a 422, not a
    database error."""

    class Input(LimitOffsetPagination.Input):
        offset: int = Field(0, ge=0, le=1_000_000_000)


class FieldError(Schema):
    field: str
    message: str


class ErrorOut(Schema):
    error: str
    message: str
    details: list[FieldError] = []


# Every operation may answer these, in the error shape: 400 unreadable body, 401 no or a
# bad key, 402 wallet short, 403 role or cap, 404 not in this team, 409 conflict, 422
# invalid input, 429 rate limit.
ERRORS = {frozenset({400, 401, 402, 403, 404, 409, 422, 429}): ErrorOut}


def usd(micros):
    """Integer micro-dollars → exact dollars, serialised as a string with at least two
    decimals ("15.00", "0.04", "0.018")."""
    dollars = (Decimal(micros) / MICROS_PER_DOLLAR).normalize()
    return dollars.quantize(Decimal("0.01")) if dollars.as_tuple().exponent > -2 else dollars


def username(user):
    return user.get_username() if user is not None else None


# Resolvers for the Out schemas (`resolve_x = usd_of("price")`), for the shapes that recur.

def usd_of(field):
    """The model's micro-dollar `field`, in dollars."""
    return staticmethod(lambda obj: usd(getattr(obj, field)))


def code_of(relation):
    """The public code of a related object, None when there is none."""
    return staticmethod(lambda obj: getattr(obj, relation).code if getattr(obj, f"{relation}_id") else None)


def username_of(relation):
    return staticmethod(lambda obj: username(getattr(obj, relation)))

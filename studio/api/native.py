"""The studio's native REST API (django-ninja): one NinjaAPI that mounts each app's
Router, authenticates team API keys, and maps the domain's exceptions to status codes
in one place, all in one error shape:

    {"error": "insufficient_funds", "message": "…", "details": []}

The routers call the same domain functions and access helpers as the HTML views.
"""

from django.core.exceptions import PermissionDenied
from django.http import Http404
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.security import HttpBearer

from jobs.actions import NotRetryable
from studio.api.models import APIKey
from studio.api.ratelimit import RateLimited
from studio.billing.money import CapExceeded, InsufficientFunds


class TeamKey(HttpBearer):
    """`Authorization: Bearer bria_…`, a team API key. The request then carries the
    key's team and member exactly as a logged-in page does (`request.membership`,
    `request.team`, `request.user`), so the views' access helpers apply unchanged."""

    def authenticate(self, request, token):
        key = APIKey.authenticate(token)
        if key is None:
            return None
        membership = key.open_request()
        request.membership, request.team, request.user = membership, membership.team, key.member
        return key


api = NinjaAPI(
    title="Bria Studio API",
    version="1",
    description=(
        "The studio's own API for a team's scripts: jobs, wallet and ledger, library, galleries and share "
        "links. Authenticate with a team API key (`Authorization: Bearer bria_…`, issued at /team/api-keys/); "
        "the key acts as its member, with their role and monthly cap. Errors share one shape: "
        "`{\"error\": code, \"message\": text, \"details\": [{field, message}]}`."
    ),
    auth=TeamKey(),
    urls_namespace="api",
)


def _error(request, status, error, message, details=(), headers=None):
    response = api.create_response(request, {"error": error, "message": message, "details": list(details)},
                                   status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


@api.exception_handler(ValidationError)
def invalid(request, exc):
    details = [{"field": _field(e.get("loc", ())),
                "message": e.get("msg", "Invalid value").removeprefix("Value error, ")} for e in exc.errors]
    return _error(request, 422, "invalid", "The request is not valid; see details.", details)


def _field(loc):
    """("query", "status") → "status"; ("body", "body", "seed") → "seed" (ninja puts
    the body's parameter name second); a rule about the whole body → "body"."""
    parts = [str(part) for part in loc]
    parts = parts[2:] if parts[:1] == ["body"] else parts[1:]
    return ".".join(parts) or (str(loc[0]) if loc else "request")


@api.exception_handler(AuthenticationError)
def unauthorized(request, exc):
    return _error(request, 401, "unauthorized", "A valid team API key is required: Authorization: Bearer bria_…",
                  headers={"WWW-Authenticate": "Bearer"})


@api.exception_handler(RateLimited)
def rate_limited(request, exc):
    return _error(request, 429, "rate_limited", str(exc), headers={"Retry-After": str(exc.retry_after)})


@api.exception_handler(PermissionDenied)
def forbidden(request, exc):
    return _error(request, 403, "forbidden", str(exc) or "Your role in this team cannot do this.")


@api.exception_handler(Http404)
def not_found(request, exc):
    return _error(request, 404, "not_found", "Not found in this team.")


@api.exception_handler(InsufficientFunds)
def insufficient_funds(request, exc):
    return _error(request, 402, "insufficient_funds", str(exc))


@api.exception_handler(CapExceeded)
def cap_exceeded(request, exc):
    return _error(request, 403, "cap_exceeded", str(exc))


@api.exception_handler(NotRetryable)
def not_retryable(request, exc):
    return _error(request, 409, "conflict", str(exc))


@api.exception_handler(HttpError)
def http_error(request, exc):
    return _error(request, exc.status_code, "bad_request" if exc.status_code == 400 else "error", exc.message)


@api.exception_handler(Exception)
def unexpected(request, exc):
    """Anything else (a body Django will not read, a bug) goes on to Django, which answers
    and logs it as for any page, and sentry-sdk reports a 500; studio.api.middleware then
    puts the answer in the error shape. (django-ninja's own default would answer a debug
    traceback in plain text.)"""
    raise exc


api.add_router("/jobs", "jobs.api.router")
api.add_router("/wallet", "studio.billing.api.router")
api.add_router("/library", "studio.library.api.router")
api.add_router("/galleries", "studio.gallery.api.router")

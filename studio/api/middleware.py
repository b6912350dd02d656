"""Every error on the studio's two APIs is JSON in that API's shape, so a client parses
every refusal the same way:

- the native API, under /api/: `{"error": code, "message": text, "details": [...]}`;
- the gateway-compatible paths (studio/api/urls.py): the gateway's `{"error", "message"}`
  (jobs/contract.py).

The routers and views shape their own refusals. Some answers are made where they cannot:
Django's 404 for a path no endpoint matches, django-ninja's 405, Django's 400 for a
request it cannot read (a body over DATA_UPLOAD_MAX_MEMORY_SIZE, a Host not in
ALLOWED_HOSTS, broken multipart) and the 500 of an unexpected exception. This middleware
sits outside all the others but the request id's, so it sees those too, and rewrites
their bodies in the shape of the path's API, keeping the status and the headers. By then
Django has logged the error (and sentry-sdk has reported a 500), as for any page.
"""

import json
from functools import cache
from http import HTTPStatus

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponse, JsonResponse
from django.urls import reverse

from jobs.contract import HttpError

NATIVE_PREFIX = "/api/"
# The native API's code and message for the answers Django makes.
NATIVE_ERRORS = {
    400: ("bad_request", "The request could not be read."),
    404: ("not_found", "There is no such API endpoint or object."),
    405: ("method_not_allowed", "This endpoint does not take that method; see the Allow header."),
    500: ("internal_error", "An unexpected error occurred and was logged; please try again later."),
}
# Where process_exception leaves a better message than the status's own.
MESSAGE_ATTRIBUTE = "api_error_message"


@cache
def gateway_prefixes():
    """The first segment of each of the gateway's paths (/bria-fibo-bbq-preview/, …, /v2/)."""
    paths = [reverse("api_gateway_fibo"), reverse("api_gateway_rmbg"), reverse("api_gateway_status", args=["-"])]
    return tuple("/" + path.split("/")[1] + "/" for path in paths)


def error_body(path, status, message=None, field=None):
    """An error on `path` in the shape of its API; None for the studio's pages."""
    if path.startswith(NATIVE_PREFIX):
        code, default = NATIVE_ERRORS.get(status, ("error", HTTPStatus(status).phrase))
        details = [{"field": field, "message": message}] if field else []
        return {"error": code, "message": message or default, "details": details}
    if path.startswith(gateway_prefixes()):
        return HttpError(status, message).body
    return None


def error_response(request, status, message, field=None):
    """A refusal made outside the APIs' own code: in the path's API shape, plain text on
    a page."""
    body = error_body(request.path, status, message, field)
    if body is None:
        return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")
    return JsonResponse(body, status=status)


class APIErrorShape:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code >= 400 and not response.streaming and not _is_json(response):
            body = error_body(request.path, response.status_code, getattr(request, MESSAGE_ATTRIBUTE, None))
            if body is not None:
                _rewrite(response, body)
        return response

    def process_exception(self, request, exception):
        """Django answers (and logs) these itself; the API's message says which limit."""
        if isinstance(exception, RequestDataTooBig):
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE // (1024 * 1024)
            setattr(request, MESSAGE_ATTRIBUTE, f"The request body is larger than the {limit} MB this endpoint reads.")


def _is_json(response):
    return response.get("Content-Type", "").startswith("application/json")


def _rewrite(response, body):
    response.content = json.dumps(body)
    response["Content-Type"] = "application/json"
    if response.has_header("Content-Length"):
        response["Content-Length"] = str(len(response.content))

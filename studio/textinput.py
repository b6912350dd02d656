"""A query string is text: no NUL character (PostgreSQL can neither store nor compare
one, so a filter on it would be a 500) and no bytes that are not UTF-8 (which Django
would quietly read as U+FFFD). Any other query string is refused here, on every path,
with a 400 naming the parameter, before a view sees it; on the APIs' paths in the API's
error shape.

Bodies are checked by what reads them: the pages' forms (Django's text fields refuse
NUL, and show it beside the field), the native API's body schemas (studio/api/schemas.py:
BodyIn) and the gateway's contract (jobs/contract.py).
"""

from urllib.parse import unquote_to_bytes

from django.core.handlers.wsgi import get_bytes_from_wsgi

from studio.api.middleware import error_response

NOT_TEXT = "must be UTF-8 text without NUL characters"


class TextOnlyQuery:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        raw = get_bytes_from_wsgi(request.META, "QUERY_STRING", "")
        name = _first_not_text(_parameters(raw)) if raw else None
        if name is not None:
            shown = name.replace("\x00", "\N{REPLACEMENT CHARACTER}")
            return error_response(request, 400, f"{shown} {NOT_TEXT}.", field=shown)
        return self.get_response(request)


def _parameters(raw):
    """(name, value) pairs of a raw query string, unquoted to the bytes that were sent."""
    for pair in raw.split(b"&"):
        name, _, value = pair.partition(b"=")
        yield unquote_to_bytes(name), unquote_to_bytes(value)


def _first_not_text(pairs):
    """The name of the first (name, value) pair of raw bytes that is not text, or None."""
    for name, value in pairs:
        if not (_is_text(name) and _is_text(value)):
            return name.decode("utf-8", "replace")
    return None


def _is_text(raw):
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return b"\x00" not in raw

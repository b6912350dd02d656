"""The gateway's request contract, as the seed document defines it: the JSON body of a
FIBO or RMBG request, what each field may hold, and the gateway-shaped 400 that names
the field. The studio's gateway-compatible API (studio/api/gateway.py) answers with
these exactly as the gateway would, and the bundled emulator (jobs/emulator/server.py)
uses the same functions; nothing here imports the emulator or its image models.

Validators take the parsed body and return the normalised parameters (defaults filled
in), or raise HttpError; they never crash on a JSON value.
"""

import json
import math
import random
from http import HTTPStatus
from urllib.parse import urlsplit

# The gateway's own bounds; the studio's forms ask for less (jobs/params.py).
ASPECT_RATIOS = ("16:9", "4:3", "1:1", "9:16")
MAX_PROMPT = 10_000

# The gateway's error bodies by status, in its {"error", "message"} shape.
ERROR_BODIES = {
    400: ("Bad Request", "The request is invalid."),
    401: ("Unauthorized", "Access denied due to missing or invalid subscription key."),
    402: ("Insufficient Balance", "Your wallet does not have enough balance."),
    403: ("Forbidden", "You do not have access to this resource."),
    404: ("Not Found", "The requested resource was not found."),
    429: ("Too Many Requests", "Rate limit exceeded. Try again in 1 second."),
    500: ("Internal Server Error", "An unexpected error occurred. Please try again later."),
    502: ("Bad Gateway", "The upstream model did not answer correctly."),
    503: ("Service Unavailable", "The service is temporarily unavailable."),
    504: ("Gateway Timeout", "The upstream model did not answer in time."),
}


class HttpError(Exception):
    """Answer the current request with this status and a gateway-shaped JSON body."""

    def __init__(self, status, message=None, error=None, headers=None):
        default_error, default_message = ERROR_BODIES.get(status, (HTTPStatus(status).phrase, HTTPStatus(status).phrase))
        super().__init__(message or default_message)
        self.status = status
        self.body = {"error": error or default_error, "message": message or default_message}
        self.headers = headers or {}


def bad_request(message):
    return HttpError(400, message, "Bad Request")


def is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value):
    # An int is checked as an int: math.isfinite() of one beyond a float's range overflows.
    return is_int(value) or (isinstance(value, float) and math.isfinite(value))


def is_text(value):
    """Text a database can store: no NUL, no lone surrogate (JSON's "\\ud800")."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse_json_object(raw: bytes) -> dict:
    """The request body as a JSON object, or a 400 saying why not."""
    if not raw.strip():
        raise bad_request("Request body must be a JSON object")

    def reject_constant(name):  # NaN / Infinity are not JSON
        raise ValueError(name)

    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise bad_request("Request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise bad_request("Request body must be a JSON object")
    return data


def reject_unknown_fields(body, allowed):
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise bad_request(f"Unknown field(s): {', '.join(unknown)}; allowed: {', '.join(allowed)}")


def is_http_url(value, schemes=("http", "https")):
    if not isinstance(value, str) or len(value) > 2048 or any(c.isspace() for c in value) or not is_text(value):
        return False
    try:
        parts = urlsplit(value)
        return parts.scheme in schemes and bool(parts.hostname)
    except ValueError:
        return False


def validate_fibo(body: dict) -> dict:
    """Normalised FIBO parameters (defaults filled in), or a 400 naming the field."""
    reject_unknown_fields(body, ("prompt", "aspect_ratio", "seed", "steps_num", "guidance_scale"))
    prompt = body.get("prompt")
    if "prompt" not in body:
        raise bad_request("prompt is required")
    if not isinstance(prompt, str):
        raise bad_request("prompt must be a string")
    if not is_text(prompt):
        raise bad_request("prompt must be text without NUL characters or lone surrogates")
    if not prompt.strip():
        raise bad_request("prompt must not be empty")
    if len(prompt) > MAX_PROMPT:
        raise bad_request(f"prompt must be at most {MAX_PROMPT} characters")

    aspect_ratio = body.get("aspect_ratio", "1:1")
    if not isinstance(aspect_ratio, str) or aspect_ratio not in ASPECT_RATIOS:
        raise bad_request(f"aspect_ratio must be one of {', '.join(ASPECT_RATIOS)}")

    if "seed" in body:
        seed = body["seed"]
        if not is_int(seed):
            raise bad_request("seed must be an integer")
        if not -(2**63) <= seed < 2**63:
            raise bad_request("seed must fit in a 64-bit integer")
    else:
        seed = random.randrange(2**32)  # "Random" default: fixed once, so the job is reproducible

    steps_num = body.get("steps_num", 30)
    if not is_int(steps_num):
        raise bad_request("steps_num must be an integer")
    if not 1 <= steps_num <= 100:
        raise bad_request("steps_num must be between 1 and 100")

    guidance_scale = body.get("guidance_scale", 7.5)
    if not is_number(guidance_scale):
        raise bad_request("guidance_scale must be a number")
    if not 5 <= guidance_scale <= 10:
        raise bad_request("guidance_scale must be between 5 and 10")

    return {
        "prompt": prompt,
        "aspect_ratio": aspect_ratio,
        "seed": seed,
        "steps_num": steps_num,
        "guidance_scale": float(guidance_scale),
    }


def validate_rmbg(body: dict) -> dict:
    reject_unknown_fields(body, ("image_url",))
    if "image_url" not in body:
        raise bad_request("image_url is required")
    if not is_http_url(body["image_url"]):
        raise bad_request("image_url must be an http or https URL")
    return {"image_url": body["image_url"]}

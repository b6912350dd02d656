"""The gateway's request contract: the parameters of a FIBO and an RMBG request, their
bounds, defaults and error messages, decided once. The studio page's form
(jobs/forms.py), the native API (jobs/api.py), the gateway-compatible API
(studio/api/gateway.py) and the bundled emulator (devtools/emulator/) all judge a
request with the checks below, so a job one of them accepts is a job every other one
accepts, and any job can be remixed through the form.

| parameter      | the seed document says            | decided here (the seed is silent)           |
|----------------|-----------------------------------|---------------------------------------------|
| prompt         | required, a string                | non-blank text (no NUL, no lone surrogate), |
|                |                                   | at most 2000 characters once surrounding    |
|                |                                   | whitespace is removed (which is dropped)    |
| aspect_ratio   | "16:9", "4:3", "1:1", "9:16";     |                                             |
|                | default "1:1"                     |                                             |
| seed           | an integer; default random        | 0 to 2^32-1; absent or null: random         |
| steps_num      | an integer; default 30            | 1 to 100                                    |
| guidance_scale | a number, 5 to 10; default 7.5    | at most two decimal places (the form's step)|
| image_url      | required, a string, public        | an http(s) URL of at most 2000 characters   |

An integer is a JSON number without a fraction: 30 and 30.0 (JSON Schema's integer), never
true, "30" or 30.5. Whether an image or callback URL is reachable (public, resolvable) is
the studio's own question, asked at submit through jobs/addresses.py; the gateway's contract
only asks that it is a URL.

Each check takes a JSON value (or what a form field made of one: an int, a Decimal) and
returns it normalised, or raises Invalid, a ValueError whose message names the field. It
never crashes on a JSON value. Nothing here imports Django or the emulator.
"""

import json
import math
import random
from decimal import Decimal
from http import HTTPStatus
from urllib.parse import urlsplit

# -- the parameters -----------------------------------------------------------------------

MAX_PROMPT_LENGTH = 2000
ASPECT_RATIOS = ("16:9", "4:3", "1:1", "9:16")
DEFAULT_ASPECT_RATIO = "1:1"
MIN_SEED, MAX_SEED = 0, 2**32 - 1
MIN_STEPS, MAX_STEPS = 1, 100
DEFAULT_STEPS = 30
MIN_GUIDANCE, MAX_GUIDANCE = Decimal("5"), Decimal("10")
GUIDANCE_PLACES = 2
GUIDANCE_STEP = Decimal(1).scaleb(-GUIDANCE_PLACES)  # 0.01
DEFAULT_GUIDANCE = Decimal("7.5")
MAX_IMAGE_URL_LENGTH = 2000

FIBO_FIELDS = ("prompt", "aspect_ratio", "seed", "steps_num", "guidance_scale")
RMBG_FIELDS = ("image_url",)

# The gateway's model ids and submit paths, per studio model.
GATEWAY_MODELS = {
    "fibo": ("bria-fibo-bbq-preview", "/bria-fibo-bbq-preview/v1/bria-fibo-bbq-preview-request"),
    "rmbg": ("bria-rmbg-2-0-682", "/bria-rmbg-2-0-682/v1/bria-rmbg-2-0-request"),
}


class Invalid(ValueError):
    """A value the contract refuses. `field` names the parameter and `rule` says what it
    must be; the message is both ("steps_num must be between 1 and 100")."""

    def __init__(self, field, rule):
        super().__init__(f"{field} {rule}")
        self.field, self.rule = field, rule


def is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value):
    # An int is checked as an int: math.isfinite() of one beyond a float's range overflows.
    if is_int(value):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, Decimal) and value.is_finite()


def is_text(value):
    """Text a database can store: no NUL, no lone surrogate (JSON's "\\ud800")."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def is_http_url(value, schemes=("http", "https")):
    if not isinstance(value, str) or len(value) > MAX_IMAGE_URL_LENGTH or not is_text(value):
        return False
    if any(c.isspace() for c in value):
        return False
    try:
        parts = urlsplit(value)
        return parts.scheme in schemes and bool(parts.hostname)
    except ValueError:
        return False


# -- the checks, one per parameter ---------------------------------------------------------

def prompt(value):
    if not isinstance(value, str):
        raise Invalid("prompt", "must be a string")
    if not is_text(value):
        raise Invalid("prompt", "must be text without NUL characters or lone surrogates")
    value = value.strip()
    if not value:
        raise Invalid("prompt", "must not be empty")
    if len(value) > MAX_PROMPT_LENGTH:
        raise Invalid("prompt", f"must be at most {MAX_PROMPT_LENGTH} characters")
    return value


def aspect_ratio(value):
    if not isinstance(value, str) or value not in ASPECT_RATIOS:
        raise Invalid("aspect_ratio", f"must be one of {', '.join(ASPECT_RATIOS)}")
    return value


def seed(value):
    """The seed, or None for a random one."""
    return None if value is None else _integer("seed", value, MIN_SEED, MAX_SEED)


def steps_num(value):
    return _integer("steps_num", value, MIN_STEPS, MAX_STEPS)


def guidance_scale(value):
    """The guidance as an exact Decimal (a float is read as it is written: 7.1 is 7.1)."""
    if not is_number(value):
        raise Invalid("guidance_scale", "must be a number")
    number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if not MIN_GUIDANCE <= number <= MAX_GUIDANCE:
        raise Invalid("guidance_scale", f"must be between {MIN_GUIDANCE} and {MAX_GUIDANCE}")
    if number != number.quantize(GUIDANCE_STEP):  # compared exactly, never rounded
        raise Invalid("guidance_scale", f"must have at most {GUIDANCE_PLACES} decimal places")
    return number


def image_url(value):
    if not is_http_url(value):
        raise Invalid("image_url", f"must be an http or https URL of at most {MAX_IMAGE_URL_LENGTH} characters")
    return value


def _integer(field, value, low, high):
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if not is_int(value):
        raise Invalid(field, "must be an integer")
    if not low <= value <= high:
        raise Invalid(field, f"must be between {low} and {high}")
    return value


CHECKS = {"prompt": prompt, "aspect_ratio": aspect_ratio, "seed": seed, "steps_num": steps_num,
          "guidance_scale": guidance_scale, "image_url": image_url}


# -- a job's parameters and the gateway's body ----------------------------------------------

def fibo_params(prompt, aspect_ratio=DEFAULT_ASPECT_RATIO, seed=None, steps_num=DEFAULT_STEPS,
                guidance_scale=DEFAULT_GUIDANCE):
    """The parameters stored on the job (JSON-safe), from already-checked values."""
    params = {
        "prompt": prompt,
        "aspect_ratio": aspect_ratio,
        "steps_num": int(steps_num),
        # Fixed-point text: "10", "7.5" (normalize() alone would write 10 as "1E+1").
        "guidance_scale": format(Decimal(guidance_scale).normalize(), "f"),
    }
    if seed is not None:
        params["seed"] = int(seed)
    return params


def fibo_payload(params):
    body = {
        "prompt": params["prompt"],
        "aspect_ratio": params["aspect_ratio"],
        "steps_num": params["steps_num"],
        # A JSON number: the gateway's guidance_scale is a number, not a string.
        "guidance_scale": float(Decimal(params["guidance_scale"])),
    }
    if params.get("seed") is not None:
        body["seed"] = params["seed"]
    return body


def rmbg_payload(image_url):
    return {"image_url": image_url}


# -- the gateway's answers ----------------------------------------------------------------

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


def validate_fibo(body: dict) -> dict:
    """A FIBO request body as the gateway judges it: every parameter checked and
    normalised, defaults filled in (a random seed fixed now, so the job is reproducible),
    or a 400 naming the field."""
    reject_unknown_fields(body, FIBO_FIELDS)
    if "prompt" not in body:
        raise bad_request("prompt is required")
    given = {"aspect_ratio": DEFAULT_ASPECT_RATIO, "seed": None, "steps_num": DEFAULT_STEPS,
             "guidance_scale": DEFAULT_GUIDANCE, **body}
    clean = _checked(given, FIBO_FIELDS)
    if clean["seed"] is None:
        clean["seed"] = random.randint(MIN_SEED, MAX_SEED)
    return clean


def validate_rmbg(body: dict) -> dict:
    reject_unknown_fields(body, RMBG_FIELDS)
    if "image_url" not in body:
        raise bad_request("image_url is required")
    return _checked(body, RMBG_FIELDS)


def _checked(body, fields):
    try:
        return {name: CHECKS[name](body[name]) for name in fields}
    except Invalid as exc:
        raise bad_request(str(exc)) from None

"""The studio speaking the Pixazo gateway's dialect, at the gateway's paths, for team API
keys: a script written for the gateway runs through the studio by changing only the
base URL and the key, and is then paid from the team wallet, capped, audited and lands
in the library.

Request validation is the gateway's own: jobs/contract.py implements the seed document,
and the studio's form, its native API and the bundled emulator use it too. On top of it
the studio judges, before anything is held, the URLs it will have to reach itself: a
callback's X-Webhook-URL and an RMBG image_url must have the right scheme, a host that
resolves, and only public addresses (jobs/addresses.py), or the answer is a 400 saying which
and why. Money and jobs go through the same actions as the studio page.
"""

import datetime
import uuid
from functools import cache

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from jobs import actions
from jobs.addresses import FetchRefused, check_url
from jobs.contract import (
    GATEWAY_MODELS,
    HttpError,
    fibo_params,
    parse_json_object,
    validate_fibo,
    validate_rmbg,
)
from jobs.models import Job, Status
from studio.api.models import APIKey
from studio.api.ratelimit import RateLimited
from studio.billing.money import CapExceeded, InsufficientFunds
from studio.library.media import signed_media_url

MODEL_BY_GATEWAY_ID = {model_id: model for model, (model_id, _) in GATEWAY_MODELS.items()}
INSUFFICIENT = {"error": "Insufficient Balance", "message": "Your wallet does not have enough balance."}
CALLBACK_URL_MAX_LENGTH = Job._meta.get_field("client_webhook_url").max_length
UNAUTHORIZED = {"error": "Unauthorized", "message": "Access denied due to missing or invalid subscription key."}


class GatewayAnswer(Exception):
    def __init__(self, status, error, message, headers=None):
        super().__init__(message)
        self.status, self.body, self.headers = status, {"error": error, "message": message}, headers or {}


def _answer(exc):
    response = JsonResponse(exc.body, status=exc.status)
    for name, value in exc.headers.items():
        response[name] = value
    return response


def gateway_view(view):
    """Key first, then the rate limit; every refusal in the gateway's error shape."""

    def wrapper(request, *args, **kwargs):
        try:
            key = APIKey.authenticate(request.headers.get("Ocp-Apim-Subscription-Key", ""))
            if key is None:
                raise GatewayAnswer(401, **UNAUTHORIZED)
            try:
                membership = key.open_request()
            except PermissionDenied as exc:
                raise GatewayAnswer(403, "Forbidden", str(exc)) from None
            return view(request, key, membership, *args, **kwargs)
        except GatewayAnswer as exc:
            return _answer(exc)
        except RateLimited as exc:
            return _answer(GatewayAnswer(429, "Too Many Requests", str(exc), {"Retry-After": str(exc.retry_after)}))
        except HttpError as exc:
            return _answer(GatewayAnswer(exc.status, exc.body["error"], exc.body["message"], exc.headers))

    wrapper.__name__ = view.__name__
    wrapper.__doc__ = view.__doc__
    return wrapper


def request_id_of(job):
    return f"{GATEWAY_MODELS[job.model][0]}_{job.code}"


def _callback(request):
    """X-Webhook-URL and X-Webhook-Mode, checked as the gateway checks them, and the URL
    one the studio can call: HTTPS (plain HTTP too with API_ALLOW_HTTP_CALLBACKS), a
    host that resolves, public addresses only."""
    url = request.headers.get("X-Webhook-URL", "")
    mode = request.headers.get("X-Webhook-Mode", "terminal")
    if mode not in ("terminal", "sync"):
        raise GatewayAnswer(400, "Bad Request", "X-Webhook-Mode must be terminal or sync")
    if not url:
        return {}
    if len(url) > CALLBACK_URL_MAX_LENGTH:
        raise GatewayAnswer(400, "Bad Request", f"X-Webhook-URL must be at most {CALLBACK_URL_MAX_LENGTH} characters")
    _reachable(url, "X-Webhook-URL", ("https", "http") if settings.API_ALLOW_HTTP_CALLBACKS else ("https",))
    return {"client_webhook_url": url, "client_webhook_mode": mode}


def _reachable(url, name, schemes=("http", "https")):
    try:
        check_url(url, name=name, schemes=schemes)
    except FetchRefused as exc:
        raise GatewayAnswer(400, "Bad Request", str(exc)) from None


def _submit(request, key, membership, model):
    body = parse_json_object(request.body)
    clean = validate_fibo(body) if model == Job.Model.FIBO else validate_rmbg(body)
    callback = _callback(request)
    if model == Job.Model.RMBG:
        _reachable(clean["image_url"], "image_url")
    try:
        if model == Job.Model.FIBO:
            job = actions.start_fibo(membership, fibo_params(**clean), **callback)
        else:
            job = actions.start_rmbg_from_url(membership, clean["image_url"], **callback)
    except InsufficientFunds:
        raise GatewayAnswer(402, **INSUFFICIENT) from None
    except (CapExceeded, PermissionDenied) as exc:
        raise GatewayAnswer(403, "Forbidden", str(exc)) from None
    request_id = request_id_of(job)
    polling_url = settings.PUBLIC_BASE_URL + _status_path() + request_id
    return JsonResponse({"request_id": request_id, "status": "QUEUED", "polling_url": polling_url}, status=202)


@cache
def _status_path():
    """The status endpoint's path up to the request id, reversed once per process rather
    than for every submission (a few percent of a submission's time)."""
    return reverse("api_gateway_status", args=["-"]).removesuffix("-")


@csrf_exempt
@require_POST
@gateway_view
def submit_fibo(request, key, membership):
    return _submit(request, key, membership, Job.Model.FIBO)


@csrf_exempt
@require_POST
@gateway_view
def submit_rmbg(request, key, membership):
    return _submit(request, key, membership, Job.Model.RMBG)


@require_GET
@gateway_view
def status(request, key, membership, request_id):
    """The universal status endpoint, for the key's team's jobs only."""
    model_id, _, code = request_id.rpartition("_")
    job = None
    if model_id in MODEL_BY_GATEWAY_ID:
        job = (Job.objects.with_card_data().filter(team=key.team, code=code, model=MODEL_BY_GATEWAY_ID[model_id]).first()
               if _is_uuid(code) else None)
    if job is None:
        raise GatewayAnswer(404, "Not Found", f"Request '{request_id}' not found")
    return JsonResponse(status_body(job))


def status_body(job):
    """The seed's status shape. COMPLETED is reported once the image is in the studio's
    storage, with signed, expiring links to the studio's copies."""
    status = job.status
    outputs = job.outputs
    if status == Status.COMPLETED and job.is_live:
        status = Status.PROCESSING
    return {
        "request_id": request_id_of(job),
        "status": status,
        "model_id": GATEWAY_MODELS[job.model][0],
        "error": job.error or None if status in (Status.FAILED, Status.ERROR) else None,
        "output": {"media_url": [signed_media_url(a) for a in outputs], "media_type": outputs[0].media_type}
        if status == Status.COMPLETED and outputs else None,
        "created_at": _iso(job.created_at),
        "updated_at": _iso(job.updated_at),
        "completed_at": _iso(job.completed_at) if status in (Status.COMPLETED, Status.FAILED, Status.ERROR) else None,
    }


def _iso(moment):
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _is_uuid(value):
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


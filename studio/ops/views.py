"""The machine-facing endpoints: liveness, readiness and metrics. None needs a session,
and none is redirected to HTTPS (settings.SECURE_REDIRECT_EXEMPT): load balancers and
Prometheus probe them from the inside, over plain HTTP."""

from django.http import Http404, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from studio.ops import health, metrics


def healthz(request):
    """Liveness: the process answers. It checks nothing else, so a database outage does
    not get every web process restarted."""
    return JsonResponse({"ok": True})


@never_cache
@require_GET
def readyz(request):
    """Readiness: 503 when a dependency that matters is down (studio/ops/health.py)."""
    report = health.readiness()
    return JsonResponse(report, status=503 if report["status"] == "down" else 200)


@never_cache
@require_GET
def metrics_view(request):
    refusal = metrics.refusal(request.headers.get("Authorization", ""))
    if refusal == 404:
        raise Http404("The metrics are off: METRICS_TOKEN is not set.")
    if refusal:
        response = HttpResponse(status=refusal, content_type="text/plain")
        if refusal == 401:
            response["WWW-Authenticate"] = "Bearer"
        return response
    return HttpResponse(metrics.exposition(), content_type=CONTENT_TYPE_LATEST)

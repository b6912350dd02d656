"""The client's address, as the proxy in front of the studio saw it.

django-allauth's rate limits (ACCOUNT_RATE_LIMITS: failed logins per username and
address, sign-ups and reset emails per address) count by it, through the account
adapter's get_client_ip (studio/accounts/adapter.py).
"""

from django.conf import settings


def client_address(request):
    """REMOTE_ADDR, or behind a proxy the last address in CLIENT_IP_HEADER: the one the
    proxy in front of the studio saw (addresses before it are whatever the client sent)."""
    if settings.CLIENT_IP_HEADER:
        header = "HTTP_" + settings.CLIENT_IP_HEADER.upper().replace("-", "_")
        address = request.META.get(header, "").split(",")[-1].strip()
        if address:
            return address
    return request.META.get("REMOTE_ADDR", "")

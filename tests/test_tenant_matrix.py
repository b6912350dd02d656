"""Tenant isolation, route by route: every URL of the studio (read from the URL
configuration, so a new route without a case here fails) is tried by each role of team
`acme`, by an outsider (who owns team `other`) and by an anonymous visitor, and must
give its designed answer. No object of another team is ever readable or writable: for
an outsider every object of acme's is a 404."""

import json

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from devtools.emulator.images import render_fibo
from jobs.actions import start_fibo
from jobs.models import Job
from jobs.transitions import apply_status
from studio.accounts.models import Membership, Role
from studio.activity.models import Comment
from studio.api.models import APIKey
from studio.gallery.models import Gallery, GalleryItem, ShareLink
from studio.library import media
from studio.library.models import Asset
from tests.conftest import login, make_user

ROLES = ("owner", "admin", "member", "viewer", "outsider", "anonymous")
MEMBERS = ("owner", "admin", "member", "viewer")
RUNNERS = ("owner", "admin", "member")
MANAGERS = ("owner", "admin")

OK = "ok"  # any answer but 403/404/5xx and the login redirect
LOGIN = "login"


def team_page(allowed=MEMBERS):
    """A page of the current team: the outsider sees their own team's (so: OK)."""
    return {**{r: OK if r in allowed else 403 for r in MEMBERS}, "outsider": OK, "anonymous": LOGIN}


def team_write(allowed=RUNNERS):
    """A write on the current team without an object in the URL."""
    return {**{r: OK if r in allowed else 403 for r in MEMBERS}, "outsider": OK, "anonymous": LOGIN}


def team_object(allowed=MEMBERS, denied=403):
    """A page or action on one of acme's objects: another team's object is a 404."""
    return {**{r: OK if r in allowed else denied for r in MEMBERS}, "outsider": 404, "anonymous": LOGIN}


def public(answer=OK):
    return {r: answer for r in ROLES}


def personal():
    """A page about the user's own account (password, email): anyone logged in."""
    return {**public(), "anonymous": LOGIN}


def api(expected):
    """The same answers through the native API, where no key is a 401, not a login."""
    return {role: 401 if answer == LOGIN else answer for role, answer in expected.items()}


# name → (method, path template, POST data, expected answer per role)
CASES = {
    "home": ("get", "/", None, {**public(), "anonymous": LOGIN}),  # where each lands: tests/test_landing.py
    "studio": ("get", "/studio/", None, team_page()),
    "start_fibo": ("post", "/studio/fibo/", {"prompt": "x", "aspect_ratio": "1:1", "steps_num": "30",
                                             "guidance_scale": "7.5"}, team_write()),
    "start_rmbg": ("post", "/studio/rmbg/", {"image_url": "https://example.com/a.png"}, team_write()),
    "card_updates": ("get", "/studio/cards/?live={job}:0", None, team_page()),
    "job_card": ("get", "/jobs/{job}/", None, team_object()),
    "remove_background": ("post", "/jobs/{job}/remove-background/", {}, team_object(RUNNERS)),
    "variations": ("post", "/jobs/{job}/variations/", {"count": "1"}, team_object(RUNNERS)),
    "asset_file": ("get", "/assets/{asset}/", None, team_object()),
    "asset_thumbnail": ("get", "/assets/{asset}/thumbnail/", None, team_object()),
    "signed_media": ("get", "{signed}", None, public()),
    "pixazo_webhook": ("post", "/hooks/pixazo/{job}/not-the-token/", {}, public(404)),
    "login": ("get", "/accounts/login/", None, public()),
    "logout": ("post", "/accounts/logout/", {}, public(LOGIN)),
    "signup": ("get", "/accounts/signup/", None, public()),
    # django-allauth's account pages (tests/test_accounts.py): the entrance is public (a
    # logged-in user is sent on), the rest is about the user's own account, never a team's.
    "account_login": ("get", "/accounts/login/", None, public()),
    "account_logout": ("post", "/accounts/logout/", {}, public(LOGIN)),
    "account_signup": ("get", "/accounts/signup/", None, public()),
    "account_inactive": ("get", "/accounts/inactive/", None, public()),
    "account_reset_password": ("get", "/accounts/password/reset/", None, public()),
    "account_reset_password_done": ("get", "/accounts/password/reset/done/", None, public()),
    "account_reset_password_from_key": ("get", "/accounts/password/reset/key/1-not-a-token/", None, public()),
    "account_reset_password_from_key_done": ("get", "/accounts/password/reset/key/done/", None, public()),
    "account_email_verification_sent": ("get", "/accounts/confirm-email/", None, public()),
    "account_confirm_email": ("get", "/accounts/confirm-email/not-a-key/", None, public()),
    "account_confirm_login_code": ("get", "/accounts/login/code/confirm/", None, personal()),  # off: sent on
    "account_email": ("get", "/accounts/email/", None, personal()),
    "account_change_password": ("get", "/accounts/password/change/", None, personal()),
    "account_set_password": ("get", "/accounts/password/set/", None, personal()),
    "account_reauthenticate": ("get", "/accounts/reauthenticate/", None, personal()),
    "account_request_reauthentication_code": ("get", "/accounts/reauthenticate/code/", None, personal()),
    "account_confirm_reauthentication_code": ("get", "/accounts/reauthenticate/code/confirm/", None, personal()),
    # Two-factor authentication (allauth.mfa): the user's own authenticators only; the
    # matrix's users have none, so those about one are a 404 (tests/test_mfa.py has the rest).
    "mfa_index": ("get", "/accounts/2fa/", None, personal()),
    "mfa_authenticate": ("get", "/accounts/2fa/authenticate/", None, personal()),  # only in a login's stage
    "mfa_reauthenticate": ("get", "/accounts/2fa/reauthenticate/", None, personal()),
    "mfa_activate_totp": ("get", "/accounts/2fa/totp/activate/", None, personal()),
    "mfa_deactivate_totp": ("get", "/accounts/2fa/totp/deactivate/", None, {**public(404), "anonymous": LOGIN}),
    "mfa_view_recovery_codes": ("get", "/accounts/2fa/recovery-codes/", None, {**public(404), "anonymous": LOGIN}),
    "mfa_generate_recovery_codes": ("get", "/accounts/2fa/recovery-codes/generate/", None, personal()),
    "mfa_download_recovery_codes": ("get", "/accounts/2fa/recovery-codes/download/", None,
                                    {**public(404), "anonymous": LOGIN}),
    "healthz": ("get", "/healthz", None, public()),
    "readyz": ("get", "/readyz", None, public()),
    "metrics": ("get", "/metrics", None, public(404)),  # off without METRICS_TOKEN; a session never opens it
    "favicon": ("get", "/favicon.ico", None, public()),
    "team": ("get", "/team/", None, team_page()),
    "set_threshold": ("post", "/team/threshold/", {"low_balance_threshold": "1"}, team_write(("owner",))),
    "set_two_factor": ("post", "/team/two-factor/", {"requires_2fa": "off"}, team_write(("owner",))),
    "set_cap": ("post", "/team/members/mark/cap/", {"monthly_cap": "1"}, team_object(MANAGERS)),
    "wallet": ("get", "/wallet/", None, team_page()),
    "wallet_csv": ("get", "/wallet/export.csv", None, team_page()),
    "reports": ("get", "/reports/", None, {"owner": OK, "admin": 404, "member": 404, "viewer": 404,
                                          "outsider": OK, "anonymous": LOGIN}),
    "report_team": ("get", "/reports/teams/{team}/", None, team_object(("owner",), denied=404)),
    "report_member": ("get", "/reports/teams/{team}/members/mark/", None, team_object(("owner",), denied=404)),
    "library": ("get", "/library/", None, team_page()),
    "variation_price": ("get", "/library/variation-price/?count=2", None, team_page()),
    "asset_detail": ("get", "/library/{asset}/", None, team_object()),
    "asset_star": ("post", "/library/{asset}/star/", {"starred": "1"}, team_object()),
    "galleries": ("get", "/galleries/", None, team_page()),
    "gallery_create": ("post", "/galleries/new/", {"title": "New"}, team_write()),
    "gallery": ("get", "/galleries/{gallery}/", None, team_object()),
    "gallery_edit": ("post", "/galleries/{gallery}/edit/", {"title": "Renamed"}, team_object(RUNNERS)),
    "gallery_delete": ("post", "/galleries/{gallery}/delete/", {}, team_object(MANAGERS)),  # or its creator
    "gallery_set_cover": ("post", "/galleries/{gallery}/cover/", {"asset": "{asset}"}, team_object(RUNNERS)),
    "gallery_add_item": ("post", "/galleries/{gallery}/items/", {"asset": "{asset}"}, team_object(RUNNERS)),
    "gallery_remove_item": ("post", "/galleries/{gallery}/items/{asset}/remove/", {}, team_object(RUNNERS)),
    "gallery_move_item": ("post", "/galleries/{gallery}/items/{asset}/move/", {"direction": "up"},
                          team_object(RUNNERS)),
    "gallery_create_link": ("post", "/galleries/{gallery}/links/", {}, team_object(RUNNERS)),
    "gallery_revoke_link": ("post", "/galleries/{gallery}/links/{link}/revoke/", {}, team_object(RUNNERS)),
    "share": ("get", "/s/{token}/", None, public()),
    "share_asset": ("get", "/s/{token}/assets/{asset}/", None, public()),
    "share_thumbnail": ("get", "/s/{token}/assets/{asset}/thumbnail/", None, public()),
    "share_zip": ("get", "/s/{token}/download.zip", None, public()),
    "activity": ("get", "/activity/", None, team_page()),
    "audit": ("get", "/audit/", None, team_page(("owner",))),
    "asset_comments": ("get", "/library/{asset}/comments/", None, team_object()),
    "comment_delete": ("post", "/comments/{comment}/delete/", {}, team_object(RUNNERS)),  # mark wrote it
    "change_role": ("post", "/team/members/vera/role/", {"role": "member"}, team_object(MANAGERS)),
    "remove_member": ("post", "/team/members/vera/remove/", {}, team_object(MANAGERS)),
    "invite": ("post", "/team/invitations/", {"role": "member", "email": "new@example.com"}, team_write(MANAGERS)),
    "revoke_invitation": ("post", "/team/invitations/{invitation}/revoke/", {}, team_object(MANAGERS)),
    # For the outsider "mark" is nobody in their team: the form says so.
    "transfer_ownership": ("post", "/team/transfer/", {"username": "mark"}, {**team_object(("owner",)), "outsider": 400}),
    # The last owner of a team may not leave it (the outsider is their team's only owner).
    "leave_team": ("post", "/team/leave/", {}, {**team_write(("admin", "member", "viewer")), "outsider": 403}),
    "delete_team": ("post", "/team/delete/", {"confirm": "acme"}, team_write(("owner",))),
    "switch_team": ("post", "/teams/switch/", {"team": "acme"}, team_object()),
    "invitation": ("get", "/invitations/{invite_token}/", None, public()),
    "api_keys": ("get", "/team/api-keys/", None, team_page(MANAGERS)),
    "api_key_create": ("post", "/team/api-keys/new/", {"name": "k", "member": "mark"}, team_write(MANAGERS)),
    "api_key_revoke": ("post", "/team/api-keys/{key}/revoke/", {}, team_object(MANAGERS)),
    # The profile is the user's own (tests/test_profile.py). The world's key acts as mark, a
    # member, who may not revoke his own keys (roles.py); to anyone else it is nobody's.
    "profile": ("get", "/accounts/profile/", None, personal()),
    "profile_revoke_key": ("post", "/accounts/profile/keys/{key}/revoke/", {},
                           {**public(404), "member": 403, "anonymous": LOGIN}),
    # The gateway-compatible API answers to team API keys only (tests/test_api_gateway.py),
    # never to a browser session.
    "api_gateway_fibo": ("post", "/bria-fibo-bbq-preview/v1/bria-fibo-bbq-preview-request", {}, public(401)),
    "api_gateway_rmbg": ("post", "/bria-rmbg-2-0-682/v1/bria-rmbg-2-0-request", {}, public(401)),
    "api_gateway_status": ("get", "/v2/requests/status/bria-fibo-bbq-preview_{job}", None, public(401)),
    "retry_job": ("post", "/jobs/{job}/retry/", {}, team_object(RUNNERS)),
    # The native API, tried with an API key acting as each role's user (the outsider's
    # key is for their own team); no key is a 401. Its own tests: tests/test_api_native.py.
    "api:api-root": ("api_get", "/api/", None, public(404)),
    "api:openapi-json": ("api_get", "/api/openapi.json", None, public()),
    "api:openapi-view": ("api_get", "/api/docs", None, public()),
    "api:list_jobs": ("api_get", "/api/jobs", None, api(team_page())),
    "api:get_job": ("api_get", "/api/jobs/{job}", None, api(team_object())),
    "api:start_fibo": ("api_post", "/api/jobs/fibo", {"prompt": "x"}, api(team_write())),
    "api:start_rmbg": ("api_post", "/api/jobs/rmbg", {"image_url": "https://example.com/a.png"}, api(team_write())),
    # The world's job is COMPLETED: a runner is told it cannot be retried (409).
    "api:retry_job": ("api_post", "/api/jobs/{job}/retry", {}, api(team_object(RUNNERS))),
    "api:get_wallet": ("api_get", "/api/wallet", None, api(team_page())),
    "api:ledger": ("api_get", "/api/wallet/ledger", None, api(team_page())),
    "api:list_assets": ("api_get", "/api/library", None, api(team_page())),
    "api:get_asset": ("api_get", "/api/library/{asset}", None, api(team_object())),
    "api:star": ("api_put", "/api/library/{asset}/star", {"starred": True}, api(team_object())),
    "api:list_galleries": ("api_get", "/api/galleries", None, api(team_page())),
    "api:get_gallery": ("api_get", "/api/galleries/{gallery}", None, api(team_object())),
    "api:add_item": ("api_post", "/api/galleries/{gallery}/items", {"asset": "{asset}"}, api(team_object(RUNNERS))),
    "api:remove_item": ("api_delete", "/api/galleries/{gallery}/items/{asset}", None, api(team_object(RUNNERS))),
    "api:move_item": ("api_post", "/api/galleries/{gallery}/items/{asset}/move", {"direction": "up"},
                      api(team_object(RUNNERS))),
    "api:set_cover": ("api_put", "/api/galleries/{gallery}/cover", {"asset": "{asset}"}, api(team_object(RUNNERS))),
    "api:list_links": ("api_get", "/api/galleries/{gallery}/links", None, api(team_object())),
    "api:revoke_link": ("api_delete", "/api/galleries/{gallery}/links/{link}", None, api(team_object(RUNNERS))),
    "api:create_gallery": ("api_post", "/api/galleries", {"title": "New"}, api(team_write())),
    "api:edit_gallery": ("api_patch", "/api/galleries/{gallery}", {"title": "Renamed"}, api(team_object(RUNNERS))),
    "api:delete_gallery": ("api_delete", "/api/galleries/{gallery}", None, api(team_object(MANAGERS))),  # or its maker
    "api:create_link": ("api_post", "/api/galleries/{gallery}/links", {}, api(team_object(RUNNERS))),
}

# Bearer links: holding the token is the permission.
BEARER_ROUTES = ("share", "share_asset", "share_thumbnail", "share_zip", "signed_media")

# Routes the matrix leaves to their own tests: Django's admin (staff only, its own
# permission system) and static files.
NOT_TENANT_ROUTES = ("admin:",)


def route_names(resolver=None, prefix=""):
    resolver = resolver or get_resolver()
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            if pattern.namespace == "admin":
                continue
            yield from route_names(pattern, f"{prefix}{pattern.namespace}:" if pattern.namespace else prefix)
        elif isinstance(pattern, URLPattern):
            yield prefix + pattern.name if pattern.name else f"<unnamed {pattern.pattern}>"


def test_every_route_has_a_case():
    names = set(route_names())
    assert names - set(CASES) == set(), "routes without a tenant-isolation case"
    assert set(CASES) - names == set(), "cases for routes that no longer exist"


@pytest.fixture
def world(team, owner, member, viewer, outsider, membership):
    admin = make_user("adele")
    Membership.objects.create(team=team, user=admin, role=Role.ADMIN)
    job = start_fibo(membership, {"prompt": "x", "aspect_ratio": "1:1", "steps_num": 30, "guidance_scale": "7.5"})
    asset = Asset.from_bytes(render_fibo("x", 1, "1:1"), team=team, role="output", job=job)
    asset.save()
    Job.objects.filter(pk=job.pk).update(submission="accepted", request_id="r-matrix")
    apply_status(job.pk, "COMPLETED")
    gallery = Gallery.objects.create(team=team, title="Picks", created_by=owner)
    GalleryItem.objects.create(gallery=gallery, asset=asset, position=0)
    link, token = ShareLink.create(gallery, owner)
    comment = Comment.post(asset, member, "Lovely light.")
    invitation, invite_token = team.invite(owner, Role.MEMBER, email="friend@example.com")
    key, _ = APIKey.issue(team, member, "script", created_by=owner)
    users = {"owner": owner, "admin": admin, "member": member, "viewer": viewer, "outsider": outsider}
    ids = {"job": job.code, "asset": asset.code, "gallery": gallery.code, "link": link.code, "token": token,
           "team": team.code, "comment": comment.code,
           "invitation": invitation.code, "key": key.code, "invite_token": invite_token, "signed": media.signed_media_url(asset).split("://", 1)[1].split("/", 1)[1]}
    ids["signed"] = "/" + ids["signed"]
    return users, ids


def client_for(role, users):
    if role == "anonymous":
        return Client(HTTP_HOST="127.0.0.1")
    return login(users[role])


def api_client_for(role, users):
    """A client carrying an API key that acts as the role's user in their own team."""
    if role == "anonymous":
        return Client(HTTP_HOST="127.0.0.1")
    membership = users[role].memberships.select_related("team").get()
    _, raw = APIKey.issue(membership.team, users[role], f"{role}'s script")
    return Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {raw}")


def fill(value, ids):
    return value.format(**ids) if isinstance(value, str) else value


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", sorted(CASES))
def test_each_route_answers_each_role_as_designed(name, role, world, settings):
    settings.PUBLIC_BASE_URL = "http://127.0.0.1"
    users, ids = world
    method, path, data, expected = CASES[name]
    url = path.format(**ids)
    if method.startswith("api_"):
        method = method.removeprefix("api_")
        body = json.dumps({k: fill(v, ids) for k, v in data.items()}) if data is not None else None
        response = getattr(api_client_for(role, users), method)(url, body, content_type="application/json")
    elif method == "get":
        response = client_for(role, users).get(url)
    else:
        response = client_for(role, users).post(url, {k: v.format(**ids) for k, v in (data or {}).items()})
    want = expected[role]
    status = response.status_code
    if want == OK:
        assert status < 500 and status not in (403, 404), f"{role} {method.upper()} {url} → {status}"
        assert not (status == 302 and "/accounts/login/" in response.get("Location", "")), f"{role} sent to log in"
    elif want == LOGIN:
        assert status == 302 and response["Location"].startswith("/accounts/login/"), f"{role} {url} → {status}"
    else:
        assert status == want, f"{role} {method.upper()} {url} → {status}, designed {want}"


def test_no_response_to_an_outsider_names_an_acme_object(world):
    users, ids = world
    client = login(users["outsider"])
    api_client = api_client_for("outsider", users)
    for name, (method, path, data, _) in CASES.items():
        if method not in ("get", "api_get") or "{" not in path or name in BEARER_ROUTES:
            continue
        body = (api_client if method == "api_get" else client).get(path.format(**ids)).content.decode(errors="replace")
        assert "Picks" not in body and "mark" not in body, name

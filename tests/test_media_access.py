"""Private media is served only to members of its team, or through a live share link of
a gallery that contains it (or, for the gateway, a signed URL that expires). Every
route that serves image bytes is listed here; a new one fails the first test until it
gets its cases."""

import io
import time
import zipfile
from datetime import timedelta

import pytest
from django.core import signing
from django.test import Client
from django.urls import get_resolver
from django.utils import timezone

from devtools.emulator.images import render_fibo
from jobs.actions import start_fibo
from studio.gallery.models import Gallery, GalleryItem, ShareLink
from studio.library import media
from studio.library.models import Asset
from tests.conftest import login

PARAMS = {"prompt": "a lighthouse", "aspect_ratio": "1:1", "steps_num": 30, "guidance_scale": "7.5"}

# Every URL name whose view answers with image (or zip) bytes.
MEDIA_ROUTES = {"asset_file", "asset_thumbnail", "signed_media", "share_asset", "share_thumbnail", "share_zip"}


def test_every_media_route_is_covered_here():
    names = {name for name in get_resolver().reverse_dict if isinstance(name, str)}
    serving = {n for n in names if any(word in n for word in ("asset", "media", "zip", "thumbnail"))}
    pages = {"asset_detail", "asset_star", "asset_comments", "gallery_add_item", "gallery_remove_item",
             "gallery_move_item"}
    assert serving - pages == MEDIA_ROUTES


@pytest.fixture
def shot(team, membership):
    job = start_fibo(membership, PARAMS)
    asset = Asset.from_bytes(render_fibo("x", 1, "1:1"), team=team, role="output", job=job)
    asset.save()
    return asset


@pytest.fixture
def private_shot(team, membership):
    """An asset of the same team that is in no shared gallery."""
    asset = Asset.from_bytes(render_fibo("y", 2, "1:1"), team=team, role="output", job=start_fibo(membership, PARAMS))
    asset.save()
    return asset


@pytest.fixture
def shared(team, owner, shot):
    gallery = Gallery.objects.create(team=team, title="Shared", created_by=owner)
    GalleryItem.objects.create(gallery=gallery, asset=shot, position=0)
    link, token = ShareLink.create(gallery, owner)
    return link, token


def anonymous():
    return Client(HTTP_HOST="127.0.0.1")


def member_urls(asset):
    return [f"/assets/{asset.code}/", f"/assets/{asset.code}/?download=1", f"/assets/{asset.code}/thumbnail/"]


def share_urls(token, asset):
    return [f"/s/{token}/assets/{asset.code}/", f"/s/{token}/assets/{asset.code}/?download=1",
            f"/s/{token}/assets/{asset.code}/thumbnail/"]


def test_members_of_the_team_get_the_member_routes(member, viewer, shot):
    for user in (member, viewer):
        for url in member_urls(shot):
            assert login(user).get(url).status_code == 200, url


def test_nobody_else_gets_the_member_routes_even_for_a_shared_asset(outsider, shot, shared):
    for client in (anonymous(), login(outsider)):
        for url in member_urls(shot):
            assert client.get(url).status_code in (302, 404), url
            assert client.get(url).status_code != 200


def test_a_live_share_link_serves_the_assets_in_its_gallery(shot, shared):
    _, token = shared
    for url in share_urls(token, shot):
        response = anonymous().get(url)
        assert response.status_code == 200, url
        assert b"".join(response.streaming_content)[:4] in (b"\x89PNG", b"RIFF")


def test_a_share_link_never_serves_an_asset_outside_its_gallery(shared, private_shot):
    _, token = shared
    for url in share_urls(token, private_shot):
        assert anonymous().get(url).status_code == 404, url


def test_a_share_link_never_serves_another_teams_asset(shared, outsider):
    other_team = outsider.memberships.get().team
    foreign = Asset.from_bytes(render_fibo("z", 3, "1:1"), team=other_team, role="output")
    foreign.save()
    _, token = shared
    for url in share_urls(token, foreign):
        assert anonymous().get(url).status_code == 404, url


@pytest.mark.parametrize("kill", ["revoke", "expire"])
def test_a_dead_link_serves_nothing_at_once(shot, shared, kill):
    link, token = shared
    if kill == "revoke":
        ShareLink.objects.filter(pk=link.pk).update(revoked_at=timezone.now())
    else:
        ShareLink.objects.filter(pk=link.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    for url in [*share_urls(token, shot), f"/s/{token}/", f"/s/{token}/download.zip"]:
        assert anonymous().get(url).status_code == 404, url


def test_a_wrong_or_truncated_token_serves_nothing(shot, shared):
    _, token = shared
    for bad in ("x" * len(token), token[:-1], token + "x"):
        for url in [*share_urls(bad, shot), f"/s/{bad}/download.zip"]:
            assert anonymous().get(url).status_code == 404, url


def test_the_zip_holds_only_the_gallerys_assets(shot, shared, private_shot):
    _, token = shared
    response = anonymous().get(f"/s/{token}/download.zip")
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert len(archive.namelist()) == 1 and str(shot.code) in archive.namelist()[0]


class SignerFromThePast(signing.TimestampSigner):
    def timestamp(self):
        return signing.b62_encode(int(time.time()) - media.SIGNED_MEDIA_MAX_AGE - 5)


def test_a_signed_url_serves_its_asset_until_it_expires(shot, settings):
    url = media.signed_media_url(shot).removeprefix(settings.PUBLIC_BASE_URL)
    assert anonymous().get(url).status_code == 200
    token = url.split("/")[2]
    assert anonymous().get(f"/m/{token[:-2]}xx/").status_code == 404, "a tampered signature"
    expired = SignerFromThePast(salt="studio.library.media").sign(str(shot.code))
    assert anonymous().get(f"/m/{expired}/").status_code == 404, "an expired signature"

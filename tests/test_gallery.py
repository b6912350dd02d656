"""Galleries and share links: curating a team's results, who may do what, and the public
pages a share link opens (and keeps closed once it is revoked or expired)."""

import datetime
import functools
import hashlib
import io
import re
import zipfile

import pytest
from django.http import StreamingHttpResponse
from django.test import Client
from django.utils import timezone

from devtools.emulator.images import render_fibo
from jobs.actions import start_fibo
from studio.accounts.models import Membership, Role, Team
from studio.gallery.models import Gallery, GalleryItem, ShareLink
from studio.library.models import Asset
from tests.conftest import login, make_user

PROMPT = "a lighthouse at dusk, oil painting"
PARAMS = {"prompt": PROMPT, "aspect_ratio": "1:1", "seed": 4242, "steps_num": 37, "guidance_scale": "6.5"}
HX = {"HTTP_HX_REQUEST": "true"}
BASE = "https://studio.example"


@pytest.fixture(autouse=True)
def fast_settings(settings):
    settings.PUBLIC_BASE_URL = BASE


@functools.cache
def png(seed):
    return render_fibo(f"image {seed}", seed, "1:1")


def make_asset(team, job=None, index=0, seed=3):
    asset = Asset.from_bytes(png(seed), team=team, role="output", job=job, index=index)
    asset.save()
    return asset


@pytest.fixture
def job(membership):
    return start_fibo(membership, PARAMS)


@pytest.fixture
def assets(team, job):
    return [make_asset(team, job, index=i, seed=i + 1) for i in range(3)]


@pytest.fixture
def gallery(team, member):
    return Gallery.objects.create(team=team, title="Spring launch", description="Hero shots", created_by=member)


@pytest.fixture
def full_gallery(gallery, assets, member):
    for asset in assets:
        gallery.add(asset, member)
    return gallery


@pytest.fixture
def other_asset(outsider):
    return make_asset(Team.objects.get(slug="other"), seed=99)


def positions(gallery):
    return list(gallery.items.values_list("asset__code", "position"))


def order(gallery):
    return [code for code, _ in positions(gallery)]


def share(gallery, user, **options):
    return ShareLink.create(gallery, user, **options)


# The list of galleries.

def test_a_member_creates_a_gallery(member, team):
    response = login(member).post("/galleries/new/", {"title": "Moodboard", "description": "Warm tones"})
    gallery = Gallery.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/galleries/{gallery.code}/"
    assert (gallery.team, gallery.title, gallery.description, gallery.created_by) == (team, "Moodboard", "Warm tones", member)


def test_a_gallery_needs_a_title(member, team):
    response = login(member).post("/galleries/new/", {"title": " ", "description": "no title"})
    assert response.status_code == 400 and 'class="field has-error"' in response.content.decode()
    assert not Gallery.objects.exists()


def test_the_list_shows_the_team_s_galleries_with_cover_count_and_update(member, full_gallery, assets, outsider):
    Gallery.objects.create(team=Team.objects.get(slug="other"), title="Not yours")
    html = login(member).get("/galleries/").content.decode()
    assert "Spring launch" in html and "3 images" in html and "updated" in html
    assert f"/assets/{assets[0].code}/thumbnail/" in html
    assert "Not yours" not in html
    assert 'action="/galleries/new/"' in html


def test_the_list_is_a_fixed_number_of_queries(member, team, assets, django_assert_num_queries):
    client = login(member)
    Gallery.objects.create(team=team, title="First").add(assets[0], member)
    client.get("/galleries/")  # warm the session
    with django_assert_num_queries(4):
        client.get("/galleries/")
    for n in range(5):
        Gallery.objects.create(team=team, title=f"More {n}").add(assets[n % 3], member)
    with django_assert_num_queries(4):
        assert client.get("/galleries/").status_code == 200


def test_a_viewer_browses_but_sees_no_create_form(viewer, full_gallery):
    client = login(viewer)
    html = client.get("/galleries/").content.decode()
    assert "Spring launch" in html and 'action="/galleries/new/"' not in html
    page = client.get(f"/galleries/{full_gallery.code}/").content.decode()
    assert "Hero shots" in page
    assert "/move/" not in page and "/remove/" not in page and "/links/" not in page and "/delete/" not in page


# One gallery.

def test_the_gallery_page_is_a_fixed_number_of_queries(member, team, job, full_gallery, django_assert_num_queries):
    client = login(member)
    share(full_gallery, member)
    client.get(f"/galleries/{full_gallery.code}/")  # warm the session
    with django_assert_num_queries(7):
        client.get(f"/galleries/{full_gallery.code}/")
    for n in range(3, 8):
        asset = make_asset(team, job, index=n, seed=n)
        full_gallery.add(asset, member)
        make_asset(team, job, index=n + 10, seed=n + 10)  # a recent result to offer
        share(full_gallery, member)
    with django_assert_num_queries(7):
        assert client.get(f"/galleries/{full_gallery.code}/").status_code == 200


def test_a_member_renames_and_describes_a_gallery(member, gallery):
    response = login(member).post(f"/galleries/{gallery.code}/edit/", {"title": "Summer launch", "description": "New copy"})
    gallery.refresh_from_db()
    assert response.status_code == 302 and (gallery.title, gallery.description) == ("Summer launch", "New copy")


def test_a_rename_to_nothing_is_refused(member, gallery):
    response = login(member).post(f"/galleries/{gallery.code}/edit/", {"title": "", "description": ""})
    gallery.refresh_from_db()
    assert response.status_code == 400 and gallery.title == "Spring launch"


def test_the_page_shows_the_items_in_order(member, full_gallery, assets):
    html = login(member).get(f"/galleries/{full_gallery.code}/").content.decode()
    found = [html.index(f"/assets/{a.code}/thumbnail/") for a in assets]
    assert found == sorted(found)
    assert "Cover" in html and PROMPT[:40] in html


def test_the_creator_deletes_a_gallery_after_a_confirmation(member, full_gallery, assets):
    client = login(member)
    page = client.get(f"/galleries/{full_gallery.code}/delete/")
    assert page.status_code == 200 and "Delete “Spring launch”?" in page.content.decode()
    assert Gallery.objects.exists()
    response = client.post(f"/galleries/{full_gallery.code}/delete/")
    assert response.status_code == 302 and response["Location"] == "/galleries/"
    assert not Gallery.objects.exists() and not GalleryItem.objects.exists()
    assert Asset.objects.count() == 3  # the images stay


def test_an_owner_deletes_a_member_s_gallery(owner, gallery):
    assert login(owner).post(f"/galleries/{gallery.code}/delete/").status_code == 302
    assert not Gallery.objects.exists()


def test_another_member_cannot_delete_someone_else_s_gallery(team, gallery):
    colleague = make_user("colin")
    Membership.objects.create(team=team, user=colleague, role=Role.MEMBER)
    client = login(colleague)
    assert client.get(f"/galleries/{gallery.code}/delete/").status_code == 403
    assert client.post(f"/galleries/{gallery.code}/delete/").status_code == 403
    assert Gallery.objects.exists()
    assert "/delete/" not in client.get(f"/galleries/{gallery.code}/").content.decode()


# Adding, removing, reordering, the cover.

def test_adding_appends_and_the_first_image_becomes_the_cover(member, gallery, assets):
    client = login(member)
    for asset in assets:
        response = client.post(f"/galleries/{gallery.code}/items/", {"asset": str(asset.code)})
        assert response.status_code == 302 and response["Location"] == f"/galleries/{gallery.code}/"
    gallery.refresh_from_db()
    assert positions(gallery) == [(a.code, n) for n, a in enumerate(assets)]
    assert gallery.cover == assets[0]
    assert gallery.items.first().added_by == member
    assert "Added to “Spring launch”." in client.get(f"/galleries/{gallery.code}/").content.decode()


def test_adding_twice_is_a_no_op_with_a_message(member, full_gallery, assets):
    client = login(member)
    response = client.post(f"/galleries/{full_gallery.code}/items/", {"asset": str(assets[1].code)}, follow=True)
    assert "This image is already in “Spring launch”." in response.content.decode()
    assert positions(full_gallery) == [(a.code, n) for n, a in enumerate(assets)]


def test_adding_another_team_s_image_is_a_404_and_adds_nothing(member, gallery, other_asset):
    response = login(member).post(f"/galleries/{gallery.code}/items/", {"asset": str(other_asset.code)})
    assert response.status_code == 404 and not GalleryItem.objects.exists()


@pytest.mark.parametrize("value", ["", "not-a-uuid", "00000000-0000-0000-0000-000000000000"])
def test_adding_an_unknown_image_is_a_404(member, gallery, value):
    assert login(member).post(f"/galleries/{gallery.code}/items/", {"asset": value}).status_code == 404
    assert not GalleryItem.objects.exists()


def test_adding_goes_back_to_a_same_site_page(member, gallery, assets):
    response = login(member).post(f"/galleries/{gallery.code}/items/", {"asset": str(assets[0].code)},
                                  HTTP_REFERER="http://127.0.0.1/library/?page=2")
    assert response["Location"] == "http://127.0.0.1/library/?page=2"


@pytest.mark.parametrize("referer", ["https://evil.example/", "//evil.example/x", "javascript:alert(1)"])
def test_adding_never_goes_back_to_another_site(member, gallery, assets, referer):
    response = login(member).post(f"/galleries/{gallery.code}/items/", {"asset": str(assets[0].code)}, HTTP_REFERER=referer)
    assert response["Location"] == f"/galleries/{gallery.code}/"


def test_removing_keeps_positions_contiguous_and_moves_the_cover_on(member, full_gallery, assets):
    response = login(member).post(f"/galleries/{full_gallery.code}/items/{assets[0].code}/remove/")
    full_gallery.refresh_from_db()
    assert response.status_code == 302
    assert positions(full_gallery) == [(assets[1].code, 0), (assets[2].code, 1)]
    assert full_gallery.cover == assets[1]
    assert Asset.objects.filter(pk=assets[0].pk).exists()


def test_removing_the_last_image_leaves_no_cover(member, gallery, assets):
    gallery.add(assets[0], member)
    login(member).post(f"/galleries/{gallery.code}/items/{assets[0].code}/remove/")
    gallery.refresh_from_db()
    assert gallery.cover is None and not gallery.items.exists()


def test_removing_an_image_not_in_the_gallery_is_a_404(member, gallery, assets):
    assert login(member).post(f"/galleries/{gallery.code}/items/{assets[0].code}/remove/").status_code == 404


def test_moving_reorders_and_keeps_positions_contiguous(member, full_gallery, assets):
    client = login(member)
    a, b, c = (asset.code for asset in assets)
    assert client.post(f"/galleries/{full_gallery.code}/items/{a}/move/", {"direction": "down"}).status_code == 302
    assert positions(full_gallery) == [(b, 0), (a, 1), (c, 2)]
    client.post(f"/galleries/{full_gallery.code}/items/{c}/move/", {"direction": "up"})
    assert positions(full_gallery) == [(b, 0), (c, 1), (a, 2)]
    client.post(f"/galleries/{full_gallery.code}/items/{b}/move/", {"direction": "up"})  # already first
    client.post(f"/galleries/{full_gallery.code}/items/{a}/move/", {"direction": "down"})  # already last
    assert positions(full_gallery) == [(b, 0), (c, 1), (a, 2)]


def test_moving_mends_gaps_left_by_deleted_images(member, full_gallery, assets):
    assets[1].delete()  # the library may delete an image; its item goes with it
    login(member).post(f"/galleries/{full_gallery.code}/items/{assets[2].code}/move/", {"direction": "up"})
    assert positions(full_gallery) == [(assets[2].code, 0), (assets[0].code, 1)]


def test_moving_with_htmx_returns_the_list_partial(member, full_gallery, assets):
    response = login(member).post(f"/galleries/{full_gallery.code}/items/{assets[0].code}/move/", {"direction": "down"}, **HX)
    html = response.content.decode()
    assert response.status_code == 200 and html.lstrip().startswith('<ol id="items"') and "<html" not in html
    assert html.index(str(assets[1].code)) < html.index(str(assets[0].code))


@pytest.mark.parametrize("direction", ["", "left", "UP"])
def test_moving_needs_up_or_down(member, full_gallery, assets, direction):
    response = login(member).post(f"/galleries/{full_gallery.code}/items/{assets[0].code}/move/", {"direction": direction})
    assert response.status_code == 400 and order(full_gallery) == [a.code for a in assets]


def test_choosing_the_cover(member, full_gallery, assets):
    response = login(member).post(f"/galleries/{full_gallery.code}/cover/", {"asset": str(assets[2].code)})
    full_gallery.refresh_from_db()
    assert response.status_code == 302 and full_gallery.cover == assets[2]


def test_the_cover_must_be_in_the_gallery(member, gallery, team, assets, other_asset):
    gallery.add(assets[0], member)
    client = login(member)
    for code in (assets[1].code, other_asset.code, "nope"):
        assert client.post(f"/galleries/{gallery.code}/cover/", {"asset": str(code)}).status_code == 404
    gallery.refresh_from_db()
    assert gallery.cover == assets[0]


def test_the_model_refuses_another_team_s_image(member, gallery, other_asset):
    with pytest.raises(ValueError):
        gallery.add(other_asset, member)


# Who may do what.

def write_requests(gallery, asset, link):
    return [
        ("post", "/galleries/new/", {"title": "x"}),
        ("post", f"/galleries/{gallery.code}/edit/", {"title": "x"}),
        ("get", f"/galleries/{gallery.code}/delete/", {}),
        ("post", f"/galleries/{gallery.code}/delete/", {}),
        ("post", f"/galleries/{gallery.code}/items/", {"asset": str(asset.code)}),
        ("post", f"/galleries/{gallery.code}/items/{asset.code}/remove/", {}),
        ("post", f"/galleries/{gallery.code}/items/{asset.code}/move/", {"direction": "down"}),
        ("post", f"/galleries/{gallery.code}/cover/", {"asset": str(asset.code)}),
        ("post", f"/galleries/{gallery.code}/links/", {}),
        ("post", f"/galleries/{gallery.code}/links/{link.code}/revoke/", {}),
    ]


def read_requests(gallery):
    return [("get", "/galleries/", {}), ("get", f"/galleries/{gallery.code}/", {})]


def test_a_viewer_gets_403_on_every_write(viewer, member, full_gallery, assets):
    link, _ = share(full_gallery, member)
    client = login(viewer)
    before = (positions(full_gallery), Gallery.objects.get().title)
    for method, url, data in write_requests(full_gallery, assets[0], link):
        assert getattr(client, method)(url, data).status_code == 403, url
    assert (positions(full_gallery), Gallery.objects.get().title) == before
    assert Gallery.objects.count() == 1 and ShareLink.objects.get().revoked_at is None


def test_an_outsider_gets_404_on_every_gallery_url(outsider, member, full_gallery, assets):
    link, _ = share(full_gallery, member)
    client = login(outsider)
    for method, url, data in write_requests(full_gallery, assets[0], link)[1:] + read_requests(full_gallery)[1:]:
        assert getattr(client, method)(url, data).status_code == 404, url
    assert Gallery.objects.get().title == "Spring launch" and ShareLink.objects.get().revoked_at is None


def test_an_outsider_s_own_gallery_cannot_take_our_images(outsider, assets):
    theirs = Gallery.objects.create(team=Team.objects.get(slug="other"), title="Theirs", created_by=outsider)
    assert login(outsider).post(f"/galleries/{theirs.code}/items/", {"asset": str(assets[0].code)}).status_code == 404
    assert not GalleryItem.objects.exists()


def test_anonymous_visitors_are_sent_to_log_in(member, full_gallery, assets):
    link, _ = share(full_gallery, member)
    client = Client(HTTP_HOST="127.0.0.1")
    for method, url, data in write_requests(full_gallery, assets[0], link) + read_requests(full_gallery):
        response = getattr(client, method)(url, data)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), url


def test_the_write_urls_refuse_get(member, full_gallery, assets):
    client = login(member)
    for method, url, _ in write_requests(full_gallery, assets[0], share(full_gallery, member)[0]):
        if method == "post" and not url.endswith("/delete/"):
            assert client.get(url).status_code == 405, url


# Share links, on the gallery page.

def new_link_url(html):
    return re.search(r'id="new-link-url"[^>]* value="([^"]+)"', html).group(1)


def test_a_link_is_shown_once_and_only_its_hash_is_kept(member, full_gallery):
    client = login(member)
    response = client.post(f"/galleries/{full_gallery.code}/links/", {})
    html = response.content.decode()
    url = new_link_url(html)
    assert response.status_code == 200 and "will not be shown again" in html
    assert response["Cache-Control"] == "private, no-store"
    token = re.fullmatch(rf"{BASE}/s/([A-Za-z0-9_-]+)/", url).group(1)
    assert len(token) >= 43  # 32 random bytes, base64url: 256 bits, twice what is needed
    link = ShareLink.objects.get()
    assert link.token_hash == hashlib.sha256(token.encode()).hexdigest()
    stored = [str(value) for value in ShareLink.objects.values_list().get()]
    assert not any(token in value for value in stored)
    assert (link.hide_recipe, link.expires_at, link.created_by) == (False, None, member)
    assert token not in client.get(f"/galleries/{full_gallery.code}/").content.decode()


def test_two_links_never_share_a_token(member, gallery):
    tokens = {share(gallery, member)[1] for _ in range(20)}
    assert len(tokens) == 20


def test_a_link_made_with_htmx_comes_back_as_the_links_partial(member, full_gallery):
    response = login(member).post(f"/galleries/{full_gallery.code}/links/", {"hide_recipe": "on", "expires_in_days": "7"}, **HX)
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="share-links"') and new_link_url(html).startswith(f"{BASE}/s/")
    link = ShareLink.objects.get()
    assert link.hide_recipe
    assert abs(link.expires_at - (timezone.now() + datetime.timedelta(days=7))) < datetime.timedelta(minutes=1)
    assert "recipe hidden" in html and "1 view" not in html and "0 views" in html


def test_an_expiry_date_lasts_to_the_end_of_that_day(member, gallery):
    day = timezone.localdate() + datetime.timedelta(days=3)
    login(member).post(f"/galleries/{gallery.code}/links/", {"expires_on": day.isoformat()})
    expires = ShareLink.objects.get().expires_at
    assert timezone.localtime(expires).date() == day + datetime.timedelta(days=1) and timezone.localtime(expires).hour == 0


@pytest.mark.parametrize("data", [
    {"expires_on": "2001-01-01"}, {"expires_on": "tomorrow"}, {"expires_in_days": "0"}, {"expires_in_days": "366"},
    {"expires_on": "2999-01-01", "expires_in_days": "3"},
])
def test_a_bad_expiry_is_refused(member, gallery, data):
    response = login(member).post(f"/galleries/{gallery.code}/links/", data)
    assert response.status_code == 400 and 'role="alert"' in response.content.decode()
    assert not ShareLink.objects.exists()


def test_the_list_of_links_shows_state_views_and_expiry(member, gallery):
    live, _ = share(gallery, member)
    ShareLink.objects.filter(pk=live.pk).update(views=12)
    revoked, _ = share(gallery, member)
    revoked.revoke()
    share(gallery, member, expires_at=timezone.now() - datetime.timedelta(hours=1))
    html = login(member).get(f"/galleries/{gallery.code}/").content.decode()
    assert "12 views" in html and "never expires" in html
    for state in ("active", "revoked", "expired"):
        assert f'class="badge badge-link-{state}"' in html
    assert html.count("Revoke</button>") == 1


def test_revoking_a_link_stops_it_at_once(member, full_gallery):
    link, token = share(full_gallery, member)
    assert Client().get(f"/s/{token}/").status_code == 200
    response = login(member).post(f"/galleries/{full_gallery.code}/links/{link.code}/revoke/")
    link.refresh_from_db()
    assert response.status_code == 302 and link.revoked_at is not None and link.state == "revoked"
    assert Client().get(f"/s/{token}/").status_code == 404


def test_revoking_with_htmx_returns_the_links_partial(member, gallery):
    link, _ = share(gallery, member)
    response = login(member).post(f"/galleries/{gallery.code}/links/{link.code}/revoke/", **HX)
    assert response.content.decode().lstrip().startswith('<section id="share-links"')
    assert "badge-link-revoked" in response.content.decode()


def test_a_link_of_another_gallery_cannot_be_revoked_through_this_one(member, team, gallery):
    elsewhere = Gallery.objects.create(team=team, title="Elsewhere")
    link, _ = share(elsewhere, member)
    assert login(member).post(f"/galleries/{gallery.code}/links/{link.code}/revoke/").status_code == 404
    link.refresh_from_db()
    assert link.revoked_at is None


# The public share page.

def test_the_share_page_shows_the_images_in_order_and_their_recipe(member, full_gallery, assets):
    full_gallery.move(assets[0], +1)
    _, token = share(full_gallery, member)
    response = Client().get(f"/s/{token}/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "Spring launch" in html and "Hero shots" in html
    found = [html.index(f"/s/{token}/assets/{code}/thumbnail/") for code in (assets[1].code, assets[0].code, assets[2].code)]
    assert found == sorted(found)
    assert f'href="/s/{token}/assets/{assets[0].code}/"' in html
    assert PROMPT in html and "4242" in html and "37" in html and "6.5" in html and "1:1" in html
    assert f'href="/s/{token}/download.zip"' in html


def test_the_share_page_is_a_fixed_number_of_queries(member, team, job, full_gallery, django_assert_num_queries):
    _, token = share(full_gallery, member)
    client = Client()
    with django_assert_num_queries(3):
        client.get(f"/s/{token}/")
    for n in range(3, 8):
        full_gallery.add(make_asset(team, job, index=n, seed=n), member)
    with django_assert_num_queries(3):
        assert client.get(f"/s/{token}/").status_code == 200


def test_a_background_removal_says_so(member, team, gallery):
    rmbg = start_fibo(Membership.objects.get(user=member), PARAMS)
    rmbg.model = "rmbg"
    rmbg.params = {"source": "x"}
    rmbg.save()
    gallery.add(make_asset(team, rmbg), member)
    _, token = share(gallery, member)
    assert "Background removal" in Client().get(f"/s/{token}/").content.decode()


def test_hide_recipe_hides_prompts_and_parameters(member, full_gallery):
    _, token = share(full_gallery, member, hide_recipe=True)
    html = Client().get(f"/s/{token}/").content.decode()
    assert "Spring launch" in html
    assert PROMPT not in html and "lighthouse" not in html
    assert "4242" not in html and "Guidance" not in html and "Steps" not in html


def test_each_view_is_counted(member, full_gallery):
    link, token = share(full_gallery, member)
    client = Client()
    for _ in range(3):
        client.get(f"/s/{token}/")
    client.get(f"/s/{token}/download.zip")  # downloads and images are not page views
    client.head(f"/s/{token}/")
    link.refresh_from_db()
    assert link.views == 3


def test_the_share_page_has_opengraph_tags_with_absolute_urls(member, full_gallery, assets):
    full_gallery.set_cover(assets[1])
    _, token = share(full_gallery, member)
    html = Client().get(f"/s/{token}/").content.decode()
    meta = dict(re.findall(r'<meta (?:property|name)="([^"]+)" content="([^"]*)"', html))
    assert meta["og:title"] == "Spring launch" and meta["og:description"] == "Hero shots"
    assert meta["og:type"] == "website" and meta["twitter:card"] == "summary_large_image"
    assert meta["og:url"] == f"{BASE}/s/{token}/"
    assert meta["og:image"] == f"{BASE}/s/{token}/assets/{assets[1].code}/"
    image = Client().get(meta["og:image"].removeprefix(BASE))
    assert image.status_code == 200 and b"".join(image.streaming_content) == assets[1].file.open("rb").read()


def test_the_preview_is_the_first_image_when_there_is_no_cover(member, full_gallery, assets):
    Gallery.objects.filter(pk=full_gallery.pk).update(cover=None)
    _, token = share(full_gallery, member)
    html = Client().get(f"/s/{token}/").content.decode()
    assert f'<meta property="og:image" content="{BASE}/s/{token}/assets/{assets[0].code}/">' in html


def test_the_share_page_keeps_the_token_out_of_referers_and_search_engines(member, full_gallery):
    _, token = share(full_gallery, member)
    response = Client().get(f"/s/{token}/")
    assert response["X-Robots-Tag"] == "noindex"
    assert response["Referrer-Policy"] == "no-referrer"
    assert response["Cache-Control"] == "private, no-store"


def test_the_share_page_links_to_nothing_members_only(member, full_gallery):
    _, token = share(full_gallery, member)
    html = Client().get(f"/s/{token}/").content.decode()
    urls = re.findall(r'(?:href|src)="([^"]+)"', html)
    assert urls
    for url in urls:
        assert url.startswith((f"/s/{token}/", "/static/")), url
    for private in ("/studio/", "/galleries/", "/assets/", "/library/", "/wallet/", "/accounts/"):
        assert f'"{private}' not in html


def test_a_member_looking_at_the_share_page_sees_only_the_public_page(member, full_gallery):
    _, token = share(full_gallery, member)
    html = login(member).get(f"/s/{token}/").content.decode()
    assert "Log out" not in html and "/galleries/" not in html


def dead_links(gallery, user):
    revoked, revoked_token = share(gallery, user)
    revoked.revoke()
    _, expired_token = share(gallery, user, expires_at=timezone.now() - datetime.timedelta(seconds=1))
    return {"revoked": revoked_token, "expired": expired_token, "unknown": "x" * 43}


def test_revoked_expired_and_unknown_tokens_are_the_same_404(member, full_gallery, assets):
    client = Client()
    bodies = set()
    for kind, token in dead_links(full_gallery, member).items():
        for url in (f"/s/{token}/", f"/s/{token}/assets/{assets[0].code}/", f"/s/{token}/assets/{assets[0].code}/thumbnail/",
                    f"/s/{token}/download.zip"):
            response = client.get(url)
            assert response.status_code == 404, (kind, url)
            bodies.add(response.content)
    assert len(bodies) == 1
    assert ShareLink.objects.filter(views__gt=0).count() == 0


def test_a_link_expires_at_its_moment(member, full_gallery, settings):
    link, token = share(full_gallery, member, expires_at=timezone.now() + datetime.timedelta(hours=1))
    assert Client().get(f"/s/{token}/").status_code == 200
    ShareLink.objects.filter(pk=link.pk).update(expires_at=timezone.now())
    assert Client().get(f"/s/{token}/").status_code == 404


def test_a_deleted_gallery_takes_its_links_with_it(member, full_gallery):
    _, token = share(full_gallery, member)
    full_gallery.delete()
    assert Client().get(f"/s/{token}/").status_code == 404


# Images through a share link.

def test_shared_images_and_thumbnails_are_served(member, full_gallery, assets):
    _, token = share(full_gallery, member)
    client = Client()
    full = client.get(f"/s/{token}/assets/{assets[0].code}/")
    assert full.status_code == 200 and full["Content-Type"] == "image/png"
    assert b"".join(full.streaming_content) == assets[0].file.open("rb").read()
    assert "attachment" not in full.get("Content-Disposition", "")
    thumb = client.get(f"/s/{token}/assets/{assets[0].code}/thumbnail/")
    assert thumb.status_code == 200 and thumb["Content-Type"] == "image/webp"
    download = client.get(f"/s/{token}/assets/{assets[0].code}/?download=1")
    assert download["Content-Disposition"].startswith("attachment")


def test_images_outside_the_gallery_are_404_through_its_link(member, team, full_gallery, other_asset):
    elsewhere = make_asset(team, seed=50)  # the same team's, but not in this gallery
    _, token = share(full_gallery, member)
    client = Client()
    for asset in (elsewhere, other_asset):
        assert client.get(f"/s/{token}/assets/{asset.code}/").status_code == 404
        assert client.get(f"/s/{token}/assets/{asset.code}/thumbnail/").status_code == 404


def test_an_image_removed_from_the_gallery_is_no_longer_shared(member, full_gallery, assets):
    _, token = share(full_gallery, member)
    full_gallery.remove(assets[0])
    assert Client().get(f"/s/{token}/assets/{assets[0].code}/").status_code == 404


def test_images_of_a_revoked_link_are_404(member, full_gallery, assets):
    link, token = share(full_gallery, member)
    link.revoke()
    assert Client().get(f"/s/{token}/assets/{assets[0].code}/").status_code == 404
    assert Client().get(f"/s/{token}/assets/{assets[0].code}/thumbnail/").status_code == 404


def test_the_private_media_routes_stay_private_for_shared_images(member, outsider, full_gallery, assets):
    share(full_gallery, member)
    for url in (f"/assets/{assets[0].code}/", f"/assets/{assets[0].code}/thumbnail/"):
        assert login(outsider).get(url).status_code == 404
        anonymous = Client(HTTP_HOST="127.0.0.1").get(url)
        assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/")


def test_the_zip_streams_exactly_the_gallery_s_images_in_order(member, full_gallery, assets):
    full_gallery.move(assets[2], -1)
    _, token = share(full_gallery, member)
    response = Client().get(f"/s/{token}/download.zip")
    assert response.status_code == 200 and isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"] == 'attachment; filename="spring-launch.zip"'
    data = b"".join(response.streaming_content)
    assert int(response["Content-Length"]) == len(data)
    archive = zipfile.ZipFile(io.BytesIO(data))
    expected = [assets[0], assets[2], assets[1]]
    assert archive.namelist() == [f"{n:02d}-{a.code}.png" for n, a in enumerate(expected, start=1)]
    for name, asset in zip(archive.namelist(), expected, strict=True):
        assert archive.read(name) == asset.file.open("rb").read()
    assert archive.testzip() is None


def test_the_zip_of_an_empty_gallery_is_an_empty_zip(member, gallery):
    _, token = share(gallery, member)
    data = b"".join(Client().get(f"/s/{token}/download.zip").streaming_content)
    assert zipfile.ZipFile(io.BytesIO(data)).namelist() == []


# The admin.

def test_the_admin_shows_galleries_and_links_without_the_token(staff, member, full_gallery):
    link, token = share(full_gallery, member)
    client = login(staff)
    assert client.get("/admin/gallery/gallery/").status_code == 200
    page = client.get(f"/admin/gallery/gallery/{full_gallery.pk}/change/").content.decode()
    assert "Spring launch" in page and str(link.code) in page
    link_page = client.get(f"/admin/gallery/sharelink/{link.pk}/change/").content.decode()
    assert link.token_hash in link_page and 'name="token_hash"' not in link_page and token not in link_page
    assert client.get("/admin/gallery/sharelink/").status_code == 200

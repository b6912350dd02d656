"""The team library as its members use it: the grid and its filters, stars, "load more",
a fixed number of queries, the page of one image with its recipe and the actions each
role gets, and what other teams and anonymous visitors get."""

import datetime
import functools
import re

import pytest
from django.test import Client

from devtools.emulator.images import render_fibo
from jobs.actions import start_fibo
from jobs.models import Job
from jobs.transitions import apply_status
from studio.accounts.models import Membership
from studio.gallery.models import Gallery
from studio.library.models import Asset, Star
from tests.conftest import login

HX_FILTER = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "library-results"}
HX_MORE = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "load-more"}
HX = {"HTTP_HX_REQUEST": "true"}
BAD_DATE = "Enter the date as YYYY-MM-DD, for example 2026-05-01."



@functools.cache
def png(prompt):
    return render_fibo(prompt, 3, "1:1")


def fibo(membership, prompt="a red balloon", seed=None):
    params = {"prompt": prompt, "aspect_ratio": "1:1", "steps_num": 30, "guidance_scale": "7.5"}
    if seed is not None:
        params["seed"] = seed
    return start_fibo(membership, params)


def settle(job, status="COMPLETED"):
    Job.objects.filter(pk=job.pk).update(submission="accepted", request_id=f"req-{job.pk}")
    apply_status(job.pk, status)


def output(job, at=None):
    """A finished job's image, as the worker stores it."""
    asset = Asset.from_bytes(png("x"), team=job.team, role="output", job=job,
                             created_by=job.created_by)
    asset.save()
    if at:
        Asset.objects.filter(pk=asset.pk).update(created_at=at)
    return asset


def result(membership, prompt="a red balloon", at=None, status="COMPLETED", seed=None):
    job = fibo(membership, prompt, seed)
    settle(job, status)
    return output(job, at)


def upload(membership, at=None):
    """An image a member uploaded to remove its background, and the RMBG job's output."""
    asset = Asset.from_bytes(png("photo"), team=membership.team, role="input",
                             created_by=membership.user)
    asset.save()
    if at:
        Asset.objects.filter(pk=asset.pk).update(created_at=at)
    return asset


def at(text):
    return datetime.datetime.fromisoformat(text).replace(tzinfo=datetime.UTC)


def shown(response):
    """The asset codes on the page, in order."""
    return re.findall(r'<article class="tile" id="asset-([0-9a-f-]+)"', response.content.decode())


def codes(*assets):
    return [str(a.code) for a in assets]


@pytest.fixture
def owner_ms(team, owner):
    return Membership.objects.select_related("team", "user").get(team=team, user=owner)


@pytest.fixture
def trio(membership, owner_ms):
    """Three results over three days: mark's balloon, olivia's lighthouse, mark's upload."""
    balloon = result(membership, "A red Balloon over hills", at=at("2026-05-01T10:00"))
    lighthouse = result(owner_ms, "a lighthouse at dusk", at=at("2026-05-02T23:59"))
    photo = upload(membership, at=at("2026-05-03T00:00"))
    return balloon, lighthouse, photo


# -- access --------------------------------------------------------------------------


def test_the_library_needs_a_login(db):
    response = Client(HTTP_HOST="127.0.0.1").get("/library/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/?next=/library/"


def test_an_asset_page_and_the_star_need_a_login(member, membership):
    asset = result(membership)
    client = Client(HTTP_HOST="127.0.0.1")
    assert client.get(f"/library/{asset.code}/")["Location"].startswith("/accounts/login/")
    assert client.post(f"/library/{asset.code}/star/", {"starred": "1"})["Location"].startswith("/accounts/login/")
    assert not Star.objects.exists()


def test_the_library_only_answers_get(member):
    assert login(member).post("/library/").status_code == 405


def test_another_teams_asset_page_is_404(membership, outsider):
    asset = result(membership)
    assert login(outsider).get(f"/library/{asset.code}/").status_code == 404


def test_starring_another_teams_asset_is_404(membership, outsider):
    asset = result(membership)
    assert login(outsider).post(f"/library/{asset.code}/star/", {"starred": "1"}, **HX).status_code == 404
    assert not Star.objects.exists()


def test_another_teams_results_are_not_in_the_library(membership, outsider, trio):
    response = login(outsider).get("/library/")
    assert shown(response) == [] and "No results yet" in response.content.decode()


# -- the grid ------------------------------------------------------------------------


def test_it_shows_every_result_newest_first(member, trio):
    balloon, lighthouse, photo = trio
    response = login(member).get("/library/")
    assert response.status_code == 200
    assert shown(response) == codes(photo, lighthouse, balloon)


def test_a_viewer_sees_the_library_too(viewer, trio):
    assert len(shown(login(viewer).get("/library/"))) == 3


def test_a_tile_shows_thumbnail_model_prompt_who_and_cost(member, trio):
    balloon, *_ = trio
    html = login(member).get("/library/").content.decode()
    assert (f'<img src="/assets/{balloon.code}/thumbnail/" alt="A red Balloon over hills"\n'
            f'               loading="lazy" width="{balloon.width}" height="{balloon.height}">') in html
    assert "Bria FIBO" in html and "A red Balloon over hills" in html and "mark ·" in html and "olivia ·" in html
    assert '$0.04 <span class="money money-charged">charged</span>' in html


def test_an_uploaded_input_carries_an_input_tag(member, trio):
    *_, photo = trio
    html = login(member).get("/library/").content.decode()
    tile = html.split(f'id="asset-{photo.code}"')[1].split("</article>")[0]
    assert '<span class="tag-input">input</span>' in tile and "uploaded for background removal" in tile
    assert html.count('class="tag-input"') == 1


def test_an_empty_library_points_to_the_studio(member, team):
    html = login(member).get("/library/").content.decode()
    assert "No results yet — " in html and '<a href="/studio/">generate something in the studio</a>' in html


# -- filters -------------------------------------------------------------------------


@pytest.mark.parametrize("query, expected", [
    ("model=fibo", ["lighthouse", "balloon"]),
    ("model=rmbg", ["photo"]),
    ("member=mark", ["photo", "balloon"]),
    ("member=olivia", ["lighthouse"]),
    ("member=nobody", []),
    ("date_from=2026-05-02", ["photo", "lighthouse"]),
    ("date_to=2026-05-02", ["lighthouse", "balloon"]),  # the "To" day is included to its end
    ("date_from=2026-05-02&date_to=2026-05-02", ["lighthouse"]),
    ("status=COMPLETED", ["lighthouse", "balloon"]),
    ("status=FAILED", []),
    ("q=BALLOON", ["balloon"]),
    ("q=at dusk", ["lighthouse"]),
    ("q=cat", []),
    ("model=fibo&member=mark", ["balloon"]),
    ("member=mark&date_from=2026-05-02", ["photo"]),
    ("model=fibo&q=a&date_to=2026-05-01&status=COMPLETED", ["balloon"]),
])
def test_the_filters_narrow_the_grid(member, trio, query, expected):
    names = dict(zip(["balloon", "lighthouse", "photo"], codes(*trio)))
    response = login(member).get(f"/library/?{query}")
    assert response.status_code == 200
    assert shown(response) == [names[n] for n in expected]


def test_the_status_filter_follows_the_job(member, membership, trio):
    failed_job = fibo(membership, "a broken vase")
    settle(failed_job, "FAILED")
    # Outputs of FAILED jobs do not happen in practice, but the filter reads the job.
    odd = output(failed_job)
    assert shown(login(member).get("/library/?status=FAILED")) == codes(odd)


def test_starred_only_shows_my_stars_not_my_teammates(member, owner, trio):
    balloon, lighthouse, photo = trio
    Star.objects.create(asset=balloon, user=member)
    Star.objects.create(asset=photo, user=member)
    Star.objects.create(asset=lighthouse, user=owner)
    assert shown(login(member).get("/library/?starred=on")) == codes(photo, balloon)
    assert shown(login(owner).get("/library/?starred=on")) == codes(lighthouse)


def test_no_match_says_so_with_a_way_back(member, trio):
    html = login(member).get("/library/?q=zebra").content.decode()
    assert "No results match these filters." in html and "No results yet" not in html


def test_the_member_list_offers_the_team_only(member, outsider, trio):
    html = login(member).get("/library/?member=mark").content.decode()
    assert '<option value="mark" selected>mark</option>' in html and '<option value="olivia">' in html
    assert "oscar" not in html


@pytest.mark.parametrize("query", ["date_from=2026-13-01", "date_to=yesterday", "date_from=01/05/2026"])
def test_a_bad_date_is_a_400_with_a_message(member, trio, query):
    response = login(member).get(f"/library/?{query}")
    assert response.status_code == 400
    assert BAD_DATE in response.content.decode() and shown(response) == []


def test_a_bad_date_over_htmx_is_a_200_partial_with_the_message(member, trio):
    response = login(member).get("/library/?date_to=yesterday", **HX_FILTER)
    html = response.content.decode()
    assert response.status_code == 200 and BAD_DATE in html
    assert "<title>" not in html and shown(response) == []


def test_the_far_ends_of_the_calendar_are_just_dates(member, trio):
    assert len(shown(login(member).get("/library/?date_from=0001-01-01&date_to=9999-12-31"))) == 3


def test_dates_the_wrong_way_round_are_refused(member, trio):
    response = login(member).get("/library/?date_from=2026-05-03&date_to=2026-05-01")
    assert response.status_code == 400 and "The “From” date is after the “To” date." in response.content.decode()


def test_an_unknown_model_or_status_is_refused(member, trio):
    assert login(member).get("/library/?model=dalle").status_code == 400
    assert login(member).get("/library/?status=DONE").status_code == 400


def test_the_filter_form_swaps_only_the_results_over_htmx(member, trio):
    balloon, *_ = trio
    response = login(member).get("/library/?q=balloon", **HX_FILTER)
    html = response.content.decode()
    assert response.status_code == 200 and "HX-Request" in response["Vary"]
    assert html.lstrip().startswith('<section id="library-results"')
    assert "<title>" not in html and 'id="library-filter"' not in html
    assert shown(response) == codes(balloon)


def test_the_filter_form_pushes_its_url_and_keeps_a_plain_action(member, trio):
    html = login(member).get("/library/").content.decode()
    assert 'action="/library/"' in html and 'hx-get="/library/"' in html
    assert 'hx-target="#library-results"' in html and 'hx-push-url="true"' in html


def test_an_htmx_history_restore_gets_the_whole_page(member, trio):
    response = login(member).get("/library/", HTTP_HX_HISTORY_RESTORE_REQUEST="true", **HX_FILTER)
    assert "<title>Library · Bria Studio</title>" in response.content.decode()


# -- stars ---------------------------------------------------------------------------


def test_starring_over_htmx_swaps_just_the_button(member, trio):
    balloon, *_ = trio
    response = login(member).post(f"/library/{balloon.code}/star/", {"starred": "1", "next": "/library/"}, **HX)
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<form class="star-form"') and 'aria-pressed="true"' in html
    assert '<input type="hidden" name="starred" value="0">' in html  # the next click un-stars
    assert '<input type="hidden" name="next" value="/library/">' in html
    assert Star.objects.get().asset == balloon and Star.objects.get().user == member


def test_unstarring_removes_only_my_star(member, owner, trio):
    balloon, *_ = trio
    Star.objects.create(asset=balloon, user=member)
    Star.objects.create(asset=balloon, user=owner)
    response = login(member).post(f"/library/{balloon.code}/star/", {"starred": "0"}, **HX)
    assert 'aria-pressed="false"' in response.content.decode()
    assert list(Star.objects.values_list("user__username", flat=True)) == ["olivia"]


def test_starring_twice_keeps_one_star(member, trio):
    balloon, *_ = trio
    client = login(member)
    client.post(f"/library/{balloon.code}/star/", {"starred": "1"}, **HX)
    client.post(f"/library/{balloon.code}/star/", {"starred": "1"}, **HX)
    assert Star.objects.count() == 1


def test_a_plain_star_post_redirects_back(member, trio):
    balloon, *_ = trio
    client = login(member)
    response = client.post(f"/library/{balloon.code}/star/", {"starred": "1", "next": "/library/?q=balloon"})
    assert response.status_code == 302 and response["Location"] == "/library/?q=balloon"
    response = client.post(f"/library/{balloon.code}/star/", {"starred": "0", "next": "https://evil.example/"})
    assert response["Location"] == f"/library/{balloon.code}/"
    assert not Star.objects.exists()


def test_a_star_post_needs_a_state(member, trio):
    balloon, *_ = trio
    assert login(member).post(f"/library/{balloon.code}/star/", {"starred": "maybe"}).status_code == 400
    assert login(member).get(f"/library/{balloon.code}/star/").status_code == 405


def test_a_viewer_can_star(viewer, trio):
    balloon, *_ = trio
    assert login(viewer).post(f"/library/{balloon.code}/star/", {"starred": "1"}, **HX).status_code == 200
    assert Star.objects.filter(user=viewer).count() == 1


def test_the_grid_shows_my_stars(member, owner, trio):
    balloon, lighthouse, _ = trio
    Star.objects.create(asset=balloon, user=member)
    Star.objects.create(asset=lighthouse, user=owner)
    html = login(member).get("/library/").content.decode()
    assert html.count('aria-pressed="true"') == 1
    tile = html.split(f'id="asset-{balloon.code}"')[1].split("</article>")[0]
    assert 'aria-pressed="true"' in tile


# -- paging --------------------------------------------------------------------------


def many_assets(membership, count):
    """`count` results cheaply: one stored image, cloned rows on settled jobs, every
    third one an upload, every fifth starred by its member, one a minute apart."""
    template = Asset.from_bytes(png("x"), team=membership.team, role="output")  # files only
    jobs = Job.objects.bulk_create([
        Job(team=membership.team, created_by=membership.user, model="fibo", params={"prompt": f"result {n}"},
            price=40_000, status="COMPLETED", money="charged", submission="accepted", request_id=f"bulk-{n}")
        for n in range(count)
    ])
    start = at("2026-05-01T00:00")
    assets = Asset.objects.bulk_create([
        Asset(team=membership.team, job=None if n % 3 == 2 else jobs[n], role="input" if n % 3 == 2 else "output",
              file=template.file.name, thumbnail=template.thumbnail.name, media_type="image/png",
              width=template.width, height=template.height, size_bytes=template.size_bytes,
              sha256=template.sha256, created_by=membership.user)
        for n in range(count)
    ])
    for n, asset in enumerate(assets):
        Asset.objects.filter(pk=asset.pk).update(created_at=start + datetime.timedelta(minutes=n))
    Star.objects.bulk_create([Star(asset=a, user=membership.user) for a in assets[::5]])
    return assets


def test_a_page_shows_24_and_load_more_brings_the_next(member, membership):
    assets = many_assets(membership, 30)
    newest_first = codes(*reversed(assets))
    client = login(member)
    page = client.get("/library/")
    html = page.content.decode()
    assert shown(page) == newest_first[:24] and "30 results, newest first" in html
    assert ('<a href="/library/?page=2" hx-get="/library/?page=2"\n'
            '           hx-target="#load-more" hx-swap="outerHTML" rel="next">Load more</a>') in html
    more = client.get("/library/?page=2", **HX_MORE)
    more_html = more.content.decode()
    assert shown(more) == newest_first[24:]
    assert "<title>" not in more_html and "results, newest first" not in more_html and 'id="load-more"' not in more_html


def test_load_more_keeps_the_filters(member, membership):
    many_assets(membership, 80)  # 54 outputs, 26 uploads
    client = login(member)
    html = client.get("/library/?model=fibo").content.decode()
    assert 'hx-get="/library/?model=fibo&amp;page=2"' in html
    more = client.get("/library/?model=fibo&page=2", **HX_MORE)
    assert len(shown(more)) == 24 and 'hx-get="/library/?model=fibo&amp;page=3"' in more.content.decode()
    last = client.get("/library/?model=fibo&page=3", **HX_MORE)
    assert len(shown(last)) == 6 and "Load more" not in last.content.decode()


def test_the_load_more_link_works_without_htmx(member, membership):
    assets = many_assets(membership, 30)
    page = login(member).get("/library/?page=2")
    html = page.content.decode()
    assert page.status_code == 200 and "<title>Library · Bria Studio</title>" in html
    assert shown(page) == codes(*reversed(assets))[24:] and "← Back to the newest" in html


@pytest.mark.parametrize("count", [10, 200])
def test_the_page_is_a_fixed_number_of_queries(member, membership, django_assert_num_queries, count):
    many_assets(membership, count)
    client = login(member)
    # session, user, membership; the count, the page (jobs, authors and stars joined in),
    # the team's members for the filter
    with django_assert_num_queries(6):
        response = client.get("/library/")
    assert len(shown(response)) == min(count, 24)
    newest = range(count - 1, max(count - 25, -1), -1)
    assert response.content.decode().count('aria-pressed="true"') == len([n for n in newest if n % 5 == 0])
    with django_assert_num_queries(5):
        response = client.get("/library/?starred=on&page=2", **HX_MORE)
    assert len(shown(response)) == (16 if count == 200 else 2)


# -- the asset page ------------------------------------------------------------------


def test_the_asset_page_shows_the_recipe(member, membership):
    asset = result(membership, "a red balloon", seed=42)
    job = asset.job
    html = login(member).get(f"/library/{asset.code}/").content.decode()
    assert "<title>a red balloon · Bria Studio</title>" in html
    assert f'<img src="/assets/{asset.code}/" width="{asset.width}" height="{asset.height}"' in html
    for label, value in [("Model", "Bria FIBO"), ("Aspect ratio", "1:1"), ("Seed", "42"), ("Steps", "30"),
                         ("Guidance scale", "7.5"), ("By", "mark"), ("Request id", f"req-{job.pk}"),
                         ("Dimensions", f"{asset.width} × {asset.height} px"), ("Media type", "image/png"),
                         ("SHA-256", asset.sha256)]:
        assert re.search(rf"<dt>{label}</dt><dd[^>]*>{re.escape(value)}</dd>", html), label
    assert '<dt>Cost</dt><dd>$0.04 <span class="money money-charged">charged</span></dd>' in html
    assert '<p class="asset-prompt">a red balloon</p>' in html
    assert "KB</dd>" in html


def test_a_random_seed_says_so(member, membership):
    asset = result(membership)
    assert "<dt>Seed</dt><dd>random</dd>" in login(member).get(f"/library/{asset.code}/").content.decode()


def test_a_member_gets_every_action_on_a_fibo_output(member, membership):
    asset = result(membership)
    job = asset.job
    html = login(member).get(f"/library/{asset.code}/").content.decode()
    assert f'href="/assets/{asset.code}/" target="_blank" rel="noopener">Open full size</a>' in html
    assert f'href="/assets/{asset.code}/?download=1">Download</a>' in html
    assert f'href="/studio/?remix={job.code}"' in html
    assert f'action="/jobs/{job.code}/variations/"' in html and 'name="count"' in html
    assert 'min="1" max="8" value="4"' in html and "4 × $0.04 = <strong>$0.16</strong>" in html
    assert f'action="/jobs/{job.code}/remove-background/"' in html
    assert f'action="/library/{asset.code}/star/"' in html


def test_a_viewer_can_only_star_and_download(viewer, membership):
    asset = result(membership)
    html = login(viewer).get(f"/library/{asset.code}/").content.decode()
    assert "?download=1" in html and f'action="/library/{asset.code}/star/"' in html
    assert "remix=" not in html and "/variations/" not in html and "/remove-background/" not in html
    assert "Add to a gallery" not in html and "/items/" not in html  # viewers do not change galleries


def test_an_upload_has_no_spending_actions(member, membership):
    asset = upload(membership)
    html = login(member).get(f"/library/{asset.code}/").content.decode()
    assert "Uploaded for background removal." in html and '<span class="tag-input">input</span>' in html
    assert "remix=" not in html and "/variations/" not in html and "/remove-background/" not in html
    assert "<dt>By</dt><dd>mark</dd>" in html and "?download=1" in html


def test_an_rmbg_output_links_its_input_and_cannot_be_remixed(member, membership, team):
    source = result(membership)
    client = login(member)
    client.post(f"/jobs/{source.job.code}/remove-background/")
    rmbg = Job.objects.get(model="rmbg")
    settle(rmbg)
    asset = output(rmbg)
    html = client.get(f"/library/{asset.code}/").content.decode()
    assert f'<dt>Input</dt><dd><a href="/library/{source.code}/">studio image</a></dd>' in html
    assert "<dt>Model</dt><dd>Bria RMBG 2.0</dd>" in html and "$0.018" in html
    assert "remix=" not in html and "/variations/" not in html and "/remove-background/" not in html


def test_the_variation_total_follows_the_count(member, team):
    client = login(member)
    def total(count):
        return client.get(f"/library/variation-price/?count={count}", **HX).content.decode()

    assert "6 × $0.04 = <strong>$0.24</strong>" in total(6)
    assert "Choose 1 to 8 images ($0.04 each)." in total(9) and "Choose 1 to 8" in total("x")


def test_the_asset_page_lists_the_teams_galleries_to_add_to(member, membership, team, outsider):
    asset = result(membership)
    zoo = Gallery.objects.create(team=team, title="Zoo")
    art = Gallery.objects.create(team=team, title="Art")
    Gallery.objects.create(team=outsider.memberships.get().team, title="Theirs")
    html = login(member).get(f"/library/{asset.code}/").content.decode()
    assert html.index(f'action="/galleries/{art.code}/items/"') < html.index(f'action="/galleries/{zoo.code}/items/"')
    assert f'<input type="hidden" name="asset" value="{asset.code}">' in html and "Theirs" not in html


def test_without_galleries_it_says_to_create_one(member, membership):
    asset = result(membership)
    html = login(member).get(f"/library/{asset.code}/").content.decode()
    assert '<a href="/galleries/">create a gallery first</a>' in html


def test_adding_to_a_gallery_comes_back_with_its_message(member, membership, team):
    asset = result(membership)
    art = Gallery.objects.create(team=team, title="Art")
    client = login(member)
    page = f"http://127.0.0.1/library/{asset.code}/"
    response = client.post(f"/galleries/{art.code}/items/", {"asset": str(asset.code)}, HTTP_REFERER=page, follow=True)
    assert response.redirect_chain[-1][0] == page
    assert "Added to “Art”." in response.content.decode()

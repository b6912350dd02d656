"""The studio page as a member uses it: forms, prices, cards, the live card poll, and
what other roles and other teams get."""

import io
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image

from devtools.emulator.images import render_fibo
from jobs.actions import start_fibo
from jobs.models import Job
from jobs.transitions import apply_status
from studio.accounts.models import Team
from studio.billing.models import Entry, Wallet
from studio.library.models import Asset
from tests.conftest import login

VALID = {"prompt": "a red balloon", "aspect_ratio": "1:1", "seed": "", "steps_num": "30", "guidance_scale": "7.5"}
HX = {"HTTP_HX_REQUEST": "true"}


def test_the_studio_needs_a_login(db):
    response = Client(HTTP_HOST="127.0.0.1").get("/studio/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_the_page_shows_prices_and_the_balance(member, team):
    response = login(member).get("/studio/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "Price: $0.04 per image" in html and "Price: $0.018 per image" in html
    assert "<strong>$1.00</strong> available" in html
    assert "No jobs yet" in html


def test_signup_gives_a_personal_team_with_an_empty_wallet(db):
    client = Client(HTTP_HOST="127.0.0.1")
    response = client.post("/accounts/signup/", {
        "username": "nina", "email": "nina@example.com",
        "password1": "a-long-secret-phrase-9", "password2": "a-long-secret-phrase-9", "team_name": "",
    })
    assert response.status_code == 302
    team = Team.objects.get(memberships__user__username="nina")
    assert team.slug == "nina" and team.memberships.get().role == "owner"
    assert (team.wallet.balance, team.wallet.held) == (0, 0)
    page = client.get("/studio/").content.decode()
    assert "<strong>$0.00</strong> available" in page


def test_signup_with_bad_input_creates_nothing(db):
    response = Client(HTTP_HOST="127.0.0.1").post("/accounts/signup/", {"username": "nina", "password1": "x", "password2": "y"})
    assert response.status_code == 400
    assert not Team.objects.exists()


def test_generate_holds_the_price_and_returns_a_queued_card(member, team):
    response = login(member).post("/studio/fibo/", VALID, **HX)
    assert response.status_code == 200
    job = Job.objects.get()
    html = response.content.decode()
    assert f'id="job-{job.code}"' in html and "QUEUED" in html and "$0.04" in html and "held" in html
    assert 'id="wallet" class="wallet" hx-swap-oob="true"' in html and "<strong>$0.96</strong>" in html
    assert job.params == {"prompt": "a red balloon", "aspect_ratio": "1:1", "steps_num": 30, "guidance_scale": "7.5"}
    assert job.created_by == member


def test_generate_without_htmx_redirects_back(member, team):
    response = login(member).post("/studio/fibo/", VALID)
    assert response.status_code == 302 and Job.objects.count() == 1


@pytest.mark.parametrize("field, value", [
    ("prompt", ""), ("prompt", "   "), ("prompt", "x" * 2001),
    ("aspect_ratio", "2:1"), ("aspect_ratio", ""),
    ("seed", "-1"), ("seed", "abc"), ("seed", str(2**32)),
    ("steps_num", "0"), ("steps_num", "101"), ("steps_num", "3.5"),
    ("guidance_scale", "4.99"), ("guidance_scale", "10.01"), ("guidance_scale", "nan"),
])
def test_bad_parameters_are_refused_next_to_the_field(member, team, field, value):
    response = login(member).post("/studio/fibo/", {**VALID, field: value}, **HX)
    html = response.content.decode()
    assert response["HX-Retarget"] == "#fibo-form"
    assert 'class="field has-error"' in html and f'name="{field}"' in html
    assert not Job.objects.exists()
    assert Wallet.objects.get(team=team).held == 0


@pytest.mark.parametrize("field, value", [("guidance_scale", "5"), ("guidance_scale", "10"), ("steps_num", "1"),
                                          ("steps_num", "100"), ("seed", "0"), ("seed", str(2**32 - 1))])
def test_parameters_at_the_bounds_are_accepted(member, team, field, value):
    response = login(member).post("/studio/fibo/", {**VALID, field: value}, **HX)
    assert response.status_code == 200 and "HX-Retarget" not in response
    assert Job.objects.count() == 1


def test_too_little_balance_says_so_and_creates_nothing(db, outsider):
    response = login(outsider).post("/studio/fibo/", VALID, **HX)
    html = response.content.decode()
    assert "This costs $0.04 but the team wallet has only $0.00 available." in html
    assert not Job.objects.exists() and not Entry.objects.filter(kind="hold").exists()


def test_a_viewer_cannot_run_jobs(viewer, team):
    client = login(viewer)
    assert "You are a <strong>viewer</strong>" in client.get("/studio/").content.decode()
    assert client.post("/studio/fibo/", VALID, **HX).status_code == 403
    assert client.post("/studio/rmbg/", {"image_url": "https://example.com/a.png"}, **HX).status_code == 403
    assert not Job.objects.exists() and Wallet.objects.get(team=team).held == 0


def png_upload(name="photo.png", data=None):
    return SimpleUploadedFile(name, data or render_fibo("a cube", 1, "1:1"), content_type="image/png")


def test_remove_background_from_an_upload(member, team):
    response = login(member).post("/studio/rmbg/", {"image": png_upload()}, **HX)
    assert response.status_code == 200
    job = Job.objects.get()
    assert job.model == "rmbg" and job.price == 18_000 and job.source_asset.role == "input"
    assert "<strong>$0.982</strong>" in response.content.decode()


def test_remove_background_from_a_url(member, team):
    login(member).post("/studio/rmbg/", {"image_url": "https://example.com/cat.jpg"}, **HX)
    assert Job.objects.get().params == {"image_url": "https://example.com/cat.jpg"}


@pytest.mark.parametrize("data, message", [
    ({}, "Upload an image or paste an image URL"),
    ({"image_url": "ftp://example.com/a.png"}, "Must be an http or https URL"),
    ({"image_url": "file:///etc/passwd"}, "Must be an http or https URL"),
])
def test_remove_background_needs_exactly_one_valid_source(member, team, data, message):
    response = login(member).post("/studio/rmbg/", data, **HX)
    assert message in response.content.decode()
    assert not Job.objects.exists()


def test_both_an_upload_and_a_url_is_refused(member, team):
    response = login(member).post("/studio/rmbg/", {"image": png_upload(), "image_url": "https://example.com/a.png"}, **HX)
    assert "one of the two" in response.content.decode() and not Job.objects.exists()


def test_an_upload_that_is_not_an_image_is_refused(member, team):
    response = login(member).post("/studio/rmbg/", {"image": png_upload("x.png", b"hello, not a png")}, **HX)
    assert "has-error" in response.content.decode() or "not a readable" in response.content.decode()
    assert not Job.objects.exists()


def test_a_truncated_image_is_refused(member, team):
    data = render_fibo("a cube", 1, "1:1")[:3000]
    response = login(member).post("/studio/rmbg/", {"image": png_upload("t.png", data)}, **HX)
    assert response["HX-Retarget"] == "#rmbg-form" and not Job.objects.exists()


def test_remove_background_on_a_finished_card(member, team, membership):
    job = start_fibo(membership, {**VALID, "steps_num": 30, "seed": 3})
    asset = Asset.from_bytes(render_fibo("x", 3, "1:1"), team=team, role="output", job=job)
    asset.save()
    apply_status(job.pk, "COMPLETED")
    response = login(member).post(f"/jobs/{job.code}/remove-background/", **HX)
    assert response.status_code == 200
    rmbg = Job.objects.get(model="rmbg")
    assert rmbg.source_asset == asset


def test_another_teams_card_and_images_are_404(member, team, membership, outsider):
    job = start_fibo(membership, VALID)
    asset = Asset.from_bytes(render_fibo("x", 3, "1:1"), team=team, role="output", job=job)
    asset.save()
    client = login(outsider)
    assert client.get(f"/jobs/{job.code}/").status_code == 404
    assert client.post(f"/jobs/{job.code}/remove-background/").status_code == 404
    assert client.get(f"/assets/{asset.code}/").status_code == 404
    assert client.get(f"/assets/{asset.code}/thumbnail/").status_code == 404
    assert login(member).get(f"/assets/{asset.code}/").status_code == 200


def test_the_card_poll_returns_only_changed_cards(member, membership):
    a = start_fibo(membership, VALID)
    b = start_fibo(membership, VALID)
    client = login(member)
    live = [f"{a.code}:{a.version}", f"{b.code}:{b.version}"]
    assert client.get("/studio/cards/", {"live": live}, **HX).status_code == 204
    apply_status(a.pk, "PROCESSING")
    response = client.get("/studio/cards/", {"live": live}, **HX)
    html = response.content.decode()
    assert response.status_code == 200
    assert f'id="job-{a.code}"' in html and f'id="job-{b.code}"' not in html
    assert 'hx-swap-oob="true"' in html and "PROCESSING" in html


def test_the_card_poll_ignores_other_teams_and_garbage(member, membership, outsider):
    job = start_fibo(membership, VALID)
    response = login(outsider).get("/studio/cards/", {"live": [f"{job.code}:0", "not-a-uuid:1", "::"]}, **HX)
    assert response.status_code == 204


def test_the_card_poll_is_one_query_set_whatever_the_number_of_cards(member, membership, django_assert_max_num_queries):
    jobs = [start_fibo(membership, VALID) for _ in range(12)]
    client = login(member)
    live = [f"{j.code}:0" for j in jobs]
    with django_assert_max_num_queries(8):
        response = client.get("/studio/cards/", {"live": live}, **HX)
    assert response.content.decode().count('hx-swap-oob="true"') == 13  # 12 cards + the wallet (no cursor sent)


def test_the_page_shows_failed_cards_with_their_message(member, membership):
    job = start_fibo(membership, VALID)
    Job.objects.filter(pk=job.pk).update(submission="accepted")
    apply_status(job.pk, "FAILED", error="Generation failed: the model could not produce an image")
    html = login(member).get("/studio/").content.decode()
    assert "Generation failed: the model could not produce an image" in html and "charged" in html


def test_thumbnails_are_webp_and_full_size_downloads(member, team, membership):
    job = start_fibo(membership, VALID)
    asset = Asset.from_bytes(render_fibo("x", 3, "16:9"), team=team, role="output", job=job)
    asset.save()
    client = login(member)
    thumb = client.get(f"/assets/{asset.code}/thumbnail/")
    assert thumb["Content-Type"] == "image/webp"
    assert Image.open(io.BytesIO(b"".join(thumb.streaming_content))).size == (384, 216)
    download = client.get(f"/assets/{asset.code}/?download=1")
    assert "attachment" in download["Content-Disposition"]


def test_a_user_in_no_team_is_told_so(staff):
    response = login(staff).get("/studio/")
    assert response.status_code == 403 and "You are not in a team" in response.content.decode()


def test_a_job_link_opens_a_page_with_its_card(member, membership):
    job = start_fibo(membership, VALID)
    page = login(member).get(f"/jobs/{job.code}/").content.decode()
    assert "<title>Bria FIBO job · Bria Studio</title>" in page and f'id="job-{job.code}"' in page
    partial = login(member).get(f"/jobs/{job.code}/", **HX).content.decode()
    assert "<title>" not in partial and f'id="job-{job.code}"' in partial


def test_remove_background_uses_the_chosen_output(member, team, membership):
    job = start_fibo(membership, VALID)
    first = Asset.from_bytes(render_fibo("x", 3, "1:1"), team=team, role="output", job=job, index=0)
    second = Asset.from_bytes(render_fibo("x", 4, "1:1"), team=team, role="output", job=job, index=1)
    first.save()
    second.save()
    apply_status(job.pk, "COMPLETED")
    login(member).post(f"/jobs/{job.code}/remove-background/", {"asset": str(second.code)})
    assert Job.objects.get(model="rmbg").source_asset == second


def test_the_card_poll_brings_teammates_new_cards(member, owner, team, membership):
    client = login(owner)
    page = client.get("/studio/").content.decode()
    since = re.search(r'id="cards-since" value="([^"]+)"', page).group(1)
    assert client.get("/studio/cards/", {"since": since}, **HX).status_code == 204
    job = start_fibo(membership, VALID)  # mark, a teammate
    html = client.get("/studio/cards/", {"since": since}, **HX).content.decode()
    assert '<div hx-swap-oob="afterbegin:#cards">' in html and f'id="job-{job.code}"' in html
    newer = re.search(r'id="cards-since" value="([^"]+)"', html).group(1)
    assert newer > since
    assert client.get("/studio/cards/", {"since": newer}, **HX).status_code == 204


def test_a_card_the_page_follows_is_not_sent_as_new(member, membership):
    job = start_fibo(membership, VALID)
    response = login(member).get("/studio/cards/", {"since": "2000-01-01T00:00:00+00:00",
                                                    "live": [f"{job.code}:{job.version}"]}, **HX)
    assert response.status_code == 204


def test_another_teams_new_cards_never_arrive(outsider, membership):
    start_fibo(membership, VALID)
    response = login(outsider).get("/studio/cards/", {"since": "2000-01-01T00:00:00+00:00"}, **HX)
    assert response.status_code == 204


def test_a_garbled_cursor_is_ignored(member, membership):
    start_fibo(membership, VALID)
    assert login(member).get("/studio/cards/", {"since": "yesterday"}, **HX).status_code == 204
    assert login(member).get("/studio/cards/", {"since": "2026-01-01T00:00:00"}, **HX).status_code == 204


def errored_job(membership):
    job = start_fibo(membership, {"prompt": "a kite", "aspect_ratio": "1:1", "steps_num": 30, "guidance_scale": "7.5"})
    Job.objects.filter(pk=job.pk).update(submission="accepted", request_id=f"r-{job.code}")
    apply_status(job.pk, "ERROR", error="Internal server error")
    return Job.objects.get(pk=job.pk)


def test_an_error_card_offers_a_retry_at_its_price(member, membership, team):
    job = errored_job(membership)
    html = login(member).get("/studio/").content.decode()
    assert f'action="/jobs/{job.code}/retry/"' in html and "Retry ($0.04)" in html


def test_retry_starts_a_new_held_job_once(member, membership, team):
    job = errored_job(membership)
    client = login(member)
    response = client.post(f"/jobs/{job.code}/retry/", **HX)
    assert response.status_code == 200
    retry = Job.objects.get(retry_of=job)
    assert retry.status == "QUEUED" and retry.money == "held" and retry.params == job.params
    assert Wallet.objects.get(team=team).held == 40_000
    # A second press (or a resent form) does not start or hold a second job.
    response = client.post(f"/jobs/{job.code}/retry/", **HX)
    assert "already been retried" in response.content.decode()
    assert Job.objects.count() == 2 and Wallet.objects.get(team=team).held == 40_000


def test_only_an_error_job_can_be_retried(member, membership, team):
    job = start_fibo(membership, {"prompt": "a kite", "aspect_ratio": "1:1", "steps_num": 30, "guidance_scale": "7.5"})
    response = login(member).post(f"/jobs/{job.code}/retry/", **HX)
    assert "Only a job that ended in ERROR" in response.content.decode()
    assert Job.objects.count() == 1


def test_a_viewer_cannot_retry_and_sees_no_button(viewer, membership, team):
    job = errored_job(membership)
    client = login(viewer)
    assert "/retry/" not in client.get("/studio/").content.decode()
    assert client.post(f"/jobs/{job.code}/retry/").status_code == 403
    assert Job.objects.count() == 1


def test_another_teams_job_cannot_be_retried(outsider, membership):
    job = errored_job(membership)
    assert login(outsider).post(f"/jobs/{job.code}/retry/").status_code == 404
    assert Job.objects.count() == 1

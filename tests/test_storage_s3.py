"""Media on an S3-compatible bucket, against a real S3 API served locally (moto's server,
tests/s3.py), in a private bucket of its own for each test: uploads and the worker's
outputs land there as objects; after the access check, every media view redirects to a
short-lived presigned URL that serves the bytes with the right type and name; share
links and their zips read from the bucket; the gateway and the APIs get presigned URLs.
The settings pick the storage from the environment and refuse bad values."""

import io
import os
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from django.core import signing
from django.core.exceptions import ImproperlyConfigured
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, override_settings
from PIL import Image
from storages.backends.s3 import S3Storage

from devtools.emulator.images import render_fibo
from jobs import tasks
from jobs.actions import start_fibo
from jobs.models import Job
from studio.api.models import APIKey
from studio.gallery.models import Gallery, GalleryItem, ShareLink
from studio.gallery.zips import CHUNK_BYTES
from studio.library.models import Asset
from tests.conftest import login
from tests.s3 import settings_from_env, use_bucket
from tests.stack import bound_socket, wait_until
from tests.test_end_to_end import finished
from tests.test_settings import start
from tests.test_tasks import PARAMS as FIBO_PARAMS
from tests.test_tasks import finish
from tests.test_tasks import reload as reload_job

PARAMS = {"prompt": "a lighthouse", "aspect_ratio": "1:1", "steps_num": 30, "guidance_scale": "7.5"}
HX = {"HTTP_HX_REQUEST": "true"}
EXPIRE = 300  # AWS_QUERYSTRING_EXPIRE's default


def make_asset(team, membership, data=None, seed=1):
    asset = Asset.from_bytes(data or render_fibo("x", seed, "1:1"), team=team, role="output",
                             job=start_fibo(membership, PARAMS))
    asset.save()
    return asset


def noise_png(side=256):
    """A PNG that does not compress: larger than one chunk of a zip's read."""
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def shot(s3_media, team, membership):
    return make_asset(team, membership)


@pytest.fixture
def shared(s3_media, team, owner, membership):
    """A gallery of three images, one larger than a zip chunk, shared by a link."""
    gallery = Gallery.objects.create(team=team, title="Harbour lights", created_by=owner)
    assets = [make_asset(team, membership, seed=1), make_asset(team, membership, noise_png()),
              make_asset(team, membership, seed=3)]
    for position, asset in enumerate(assets):
        GalleryItem.objects.create(gallery=gallery, asset=asset, position=position)
    link, token = ShareLink.create(gallery, owner)
    return link, token, assets


def objects_of(asset):
    return [asset.file.name, asset.thumbnail.name]


def follow(response):
    """The bucket's answer to the presigned URL a media view redirected to."""
    assert response.status_code == 302, response.status_code
    return httpx.get(response["Location"], timeout=10)


def assert_presigned(location, s3_media, expire=EXPIRE, method="GET"):
    """A URL of this bucket, signed (v4) now for `method` by the studio's key, valid
    `expire` seconds."""
    assert s3_media.server.signs(location, method), f"not signed for {method}"
    url = urlsplit(location)
    query = {name: values[0] for name, values in parse_qs(url.query).items()}
    assert f"{url.scheme}://{url.netloc}" == s3_media.server.url and url.path.startswith(f"/{s3_media.name}/")
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256" and query["X-Amz-Signature"]
    assert query["X-Amz-Credential"].startswith(f"{s3_media.server.access_key}/")
    signed_at = datetime.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - signed_at).total_seconds()) < 60
    assert int(query["X-Amz-Expires"]) == expire
    return query


# Writing.

def test_an_asset_s_image_and_thumbnail_are_objects_in_the_bucket_not_files(s3_media, team, membership, settings):
    asset = make_asset(team, membership)
    assert s3_media.keys() == sorted(objects_of(asset))
    assert asset.file.name == f"teams/{team.code}/{asset.code}/image.png"
    assert s3_media.read(asset.file.name) == render_fibo("x", 1, "1:1")
    assert s3_media.read(asset.thumbnail.name)[8:12] == b"WEBP"
    assert not Path(settings.MEDIA_ROOT).exists(), "nothing written to the local disk"


def test_an_upload_for_background_removal_lands_in_the_bucket(s3_media, member, team):
    upload = SimpleUploadedFile("photo.png", render_fibo("upload", 7, "1:1"), content_type="image/png")
    assert login(member).post("/studio/rmbg/", {"image": upload}, **HX).status_code == 200
    source = Job.objects.get(model="rmbg").source_asset
    assert s3_media.keys() == sorted(objects_of(source))
    assert s3_media.read(source.file.name) == render_fibo("upload", 7, "1:1")


def test_the_bucket_is_private(s3_media, shot):
    for key in objects_of(shot):
        anonymous = httpx.get(f"{s3_media.server.url}/{s3_media.name}/{key}", timeout=10)
        assert anonymous.status_code == 403, "moto refuses an unsigned GET of a private object, as S3 does"
        grants = s3_media.client.get_object_acl(Bucket=s3_media.name, Key=key)["Grants"]
        assert [grant["Grantee"]["Type"] for grant in grants] == ["CanonicalUser"], "no AllUsers grant"


# Serving to members.

def test_a_member_is_redirected_to_a_presigned_url_that_serves_the_image(s3_media, member, shot):
    response = login(member).get(f"/assets/{shot.code}/")
    assert_presigned(response["Location"], s3_media)
    assert response["Cache-Control"] == f"private, max-age={EXPIRE // 2}"
    image = follow(response)
    assert image.status_code == 200 and image.content == render_fibo("x", 1, "1:1")
    assert image.headers["Content-Type"] == "image/png"
    assert image.headers["Cache-Control"] == "private, max-age=3600"
    assert "Content-Disposition" not in image.headers


def test_the_thumbnail_is_served_by_the_bucket_as_webp(s3_media, member, shot):
    response = login(member).get(f"/assets/{shot.code}/thumbnail/")
    assert_presigned(response["Location"], s3_media)
    thumbnail = follow(response)
    assert thumbnail.status_code == 200 and thumbnail.headers["Content-Type"] == "image/webp"
    assert thumbnail.content == s3_media.read(shot.thumbnail.name)


def test_a_download_keeps_its_file_name(s3_media, member, shot):
    response = login(member).get(f"/assets/{shot.code}/?download=1")
    query = assert_presigned(response["Location"], s3_media)
    assert query["response-content-disposition"] == f'attachment; filename="bria-{shot.code}.png"'
    download = follow(response)
    assert download.headers["Content-Disposition"] == f'attachment; filename="bria-{shot.code}.png"'
    assert download.headers["Content-Type"] == "image/png" and download.content[:4] == b"\x89PNG"


def test_the_object_url_alone_is_refused_and_the_expiry_cannot_be_stretched(s3_media, member, shot):
    location = login(member).get(f"/assets/{shot.code}/")["Location"]
    assert httpx.get(location.split("?")[0], timeout=10).status_code == 403
    assert s3_media.server.signs(location)
    assert not s3_media.server.signs(location.replace(f"X-Amz-Expires={EXPIRE}", "X-Amz-Expires=86400"))


def test_another_team_gets_a_404_and_no_redirect(s3_media, outsider, shot):
    for url in (f"/assets/{shot.code}/", f"/assets/{shot.code}/?download=1", f"/assets/{shot.code}/thumbnail/"):
        response = login(outsider).get(url)
        assert response.status_code == 404 and "Location" not in response, url


def test_a_visitor_is_sent_to_log_in_not_to_the_bucket(s3_media, shot):
    response = Client(HTTP_HOST="127.0.0.1").get(f"/assets/{shot.code}/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_the_pages_allow_images_from_the_bucket(s3_media, member, shot, shared):
    _, token, _ = shared
    for page in (login(member).get("/library/"), Client(HTTP_HOST="127.0.0.1").get(f"/s/{token}/")):
        assert page.status_code == 200
        img_src = next(d for d in page["Content-Security-Policy"].split(";") if d.strip().startswith("img-src"))
        assert img_src.split() == ["img-src", "'self'", "data:", "blob:", s3_media.server.url]


# Share links.

def test_a_share_link_s_images_redirect_to_the_bucket(s3_media, shared):
    _, token, assets = shared
    visitor = Client(HTTP_HOST="127.0.0.1")
    image = follow(visitor.get(f"/s/{token}/assets/{assets[0].code}/"))
    assert image.content == render_fibo("x", 1, "1:1") and image.headers["Content-Type"] == "image/png"
    thumbnail = follow(visitor.get(f"/s/{token}/assets/{assets[1].code}/thumbnail/"))
    assert thumbnail.content == s3_media.read(assets[1].thumbnail.name)
    download = follow(visitor.get(f"/s/{token}/assets/{assets[2].code}/?download=1"))
    assert download.headers["Content-Disposition"] == f'attachment; filename="bria-{assets[2].code}.png"'


def test_a_link_previewer_s_head_is_redirected_to_a_url_signed_for_head(s3_media, shared):
    _, token, assets = shared
    response = Client(HTTP_HOST="127.0.0.1").head(f"/s/{token}/assets/{assets[0].code}/")
    assert_presigned(response["Location"], s3_media, method="HEAD")
    assert not s3_media.server.signs(response["Location"], "GET")
    answer = httpx.head(response["Location"], timeout=10)
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "image/png"


def test_a_revoked_link_is_a_404_without_a_redirect(s3_media, shared, owner):
    link, token, assets = shared
    link.revoke(owner)
    response = Client(HTTP_HOST="127.0.0.1").get(f"/s/{token}/assets/{assets[0].code}/")
    assert response.status_code == 404 and "Location" not in response


def test_the_zip_streams_every_image_from_the_bucket_in_chunks(s3_media, shared):
    _, token, assets = shared
    response = Client(HTTP_HOST="127.0.0.1").get(f"/s/{token}/download.zip")
    assert response.status_code == 200 and response.streaming
    pieces = list(response.streaming_content)
    body = b"".join(pieces)
    assert int(response["Content-Length"]) == len(body)
    # The large image arrived as several reads, none larger than a chunk (and its headers).
    assert max(len(piece) for piece in pieces) <= CHUNK_BYTES + 1024 and len(pieces) > 2 * len(assets)
    archive = zipfile.ZipFile(io.BytesIO(body))
    names = archive.namelist()
    assert names == [f"{n:02d}-{asset.code}.png" for n, asset in enumerate(assets, start=1)]
    for name, asset in zip(names, assets):
        assert archive.read(name) == s3_media.read(asset.file.name)


# The gateway and the APIs.

def test_the_apis_hand_out_presigned_urls_valid_an_hour(s3_media, team, member, shot):
    _, key = APIKey.issue(team, member, "script")
    item = Client(HTTP_HOST="127.0.0.1").get(f"/api/library/{shot.code}", HTTP_AUTHORIZATION=f"Bearer {key}").json()
    assert_presigned(item["url"], s3_media, expire=3600)
    image = httpx.get(item["url"], timeout=10)
    assert image.content == render_fibo("x", 1, "1:1") and image.headers["Content-Type"] == "image/png"


def test_an_old_studio_signed_url_redirects_to_the_bucket(s3_media, shot):
    token = signing.TimestampSigner(salt="studio.library.media").sign(str(shot.code))
    response = Client(HTTP_HOST="127.0.0.1").get(f"/m/{token}/")
    assert follow(response).content == render_fibo("x", 1, "1:1")


@pytest.fixture
def worker(s3_media, worker):
    """The shared worker, started once the media are in this test's bucket: its
    environment carries the bucket's AWS_* variables."""
    return worker


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_the_real_worker_stores_results_in_the_bucket_and_the_gateway_fetches_inputs_from_it(
        s3_media, member, team, worker, emulator, settings):
    client = login(member)
    client.post("/studio/fibo/", {**PARAMS, "seed": "42"}, **HX)
    fibo = Job.objects.get(model="fibo")
    wait_until(lambda: finished(fibo), seconds=45, what=lambda: f"FIBO job finished\n{worker.output()}")
    assert fibo.status == "COMPLETED", fibo.error
    [output] = fibo.outputs
    # A refresh that lost the race to store the same output removes its copy after the
    # winner has committed: wait for the bucket to hold exactly the stored output.
    wait_until(lambda: s3_media.keys() == sorted(objects_of(output)), seconds=20,
               what=lambda: f"only the output's objects in the bucket: {s3_media.keys()}")
    assert Image.open(io.BytesIO(s3_media.read(output.file.name))).size == (1024, 1024)

    # The gateway-compatible API's media_url serves the stored image.
    _, key = APIKey.issue(team, member, "script")
    status = Client(HTTP_HOST="127.0.0.1").get(f"/v2/requests/status/bria-fibo-bbq-preview_{fibo.code}",
                                               HTTP_OCP_APIM_SUBSCRIPTION_KEY=key).json()
    [media_url] = status["output"]["media_url"]
    assert httpx.get(media_url, timeout=10).content == s3_media.read(output.file.name)

    # An upload's background removed: the emulator fetched the input from the bucket.
    upload = SimpleUploadedFile("photo.png", render_fibo("upload", 7, "1:1"), content_type="image/png")
    client.post("/studio/rmbg/", {"image": upload}, **HX)
    rmbg = Job.objects.get(model="rmbg")
    wait_until(lambda: finished(rmbg), seconds=45, what=lambda: f"RMBG job finished\n{worker.output()}")
    assert rmbg.status == "COMPLETED", rmbg.error
    [sent] = [r["body"] for r in emulator.requests() if r["request_id"] == rmbg.request_id]
    assert_presigned(sent["image_url"], s3_media, expire=3600)
    [cutout] = rmbg.outputs
    assert s3_media.keys() == sorted(objects_of(output) + objects_of(rmbg.source_asset) + objects_of(cutout))
    assert Image.open(io.BytesIO(s3_media.read(cutout.file.name))).mode == "RGBA"
    assert not Path(settings.MEDIA_ROOT).exists(), "nothing written to the local disk"


# Settings.

BUCKET_ENV = {"AWS_STORAGE_BUCKET_NAME": "studio-media", "AWS_S3_ENDPOINT_URL": "http://minio:9000",
              "AWS_ACCESS_KEY_ID": "studio", "AWS_SECRET_ACCESS_KEY": "secret"}
STORAGE = ("import django; django.setup(); from django.core.files.storage import storages; "
           "from django.conf import settings; print(type(storages['default']).__name__, "
           "settings.CONTENT_SECURITY_POLICY['DIRECTIVES']['img-src'][-1])")


def test_a_bucket_in_the_environment_makes_it_the_default_storage(tmp_path):
    result = start(STORAGE, STUDIO_VAR_DIR=str(tmp_path), **BUCKET_ENV)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["S3Storage", "http://minio:9000"]


def test_without_a_bucket_media_stay_on_the_local_disk(tmp_path):
    result = start(STORAGE, STUDIO_VAR_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["FileSystemStorage", "blob:"]


def test_the_bucket_stays_private_and_urls_are_short_lived_by_default():
    computed = settings_from_env(BUCKET_ENV)
    assert computed["AWS_DEFAULT_ACL"] is None and computed["AWS_QUERYSTRING_AUTH"] is True
    assert computed["AWS_QUERYSTRING_EXPIRE"] == 300
    config = computed["AWS_S3_CLIENT_CONFIG"]
    assert (config.signature_version, config.s3, config.connect_timeout) == ("s3v4", {"addressing_style": "path"}, 5)


@pytest.mark.parametrize("name, value", [
    ("AWS_STORAGE_BUCKET_NAME", "Studio_Media"),
    ("AWS_S3_ENDPOINT_URL", "minio:9000"),
    ("AWS_S3_ENDPOINT_URL", "ftp://minio:9000"),
    ("AWS_S3_REGION_NAME", "EU West"),
    ("AWS_S3_ADDRESSING_STYLE", "auto"),
    ("AWS_QUERYSTRING_EXPIRE", "soon"),
    ("AWS_QUERYSTRING_EXPIRE", "0"),
    ("AWS_QUERYSTRING_EXPIRE", "999999"),
    ("AWS_SECRET_ACCESS_KEY", ""),
    ("AWS_ACCESS_KEY_ID", ""),
])
def test_a_bad_bucket_setting_stops_start_up_naming_the_variable(name, value):
    with pytest.raises(ImproperlyConfigured, match=name):
        settings_from_env({**BUCKET_ENV, name: value})


def test_a_bucket_on_aws_needs_its_region():
    with pytest.raises(ImproperlyConfigured, match="AWS_S3_REGION_NAME"):
        settings_from_env({**BUCKET_ENV, "AWS_S3_ENDPOINT_URL": ""})


@pytest.mark.parametrize("env", [
    {"AWS_S3_ENDPOINT_URL": "", "AWS_S3_REGION_NAME": "eu-west-3"},
    {"AWS_S3_ENDPOINT_URL": "", "AWS_S3_REGION_NAME": "us-east-1"},
    {"AWS_S3_ENDPOINT_URL": "", "AWS_S3_REGION_NAME": "eu-west-3", "AWS_S3_ADDRESSING_STYLE": "path"},
    {"AWS_S3_ENDPOINT_URL": "", "AWS_S3_REGION_NAME": "eu-west-3", "AWS_STORAGE_BUCKET_NAME": "media.example.com"},
    {"AWS_S3_ENDPOINT_URL": "https://minio.example:9000"},
    {"AWS_S3_ENDPOINT_URL": "https://minio.example:9000", "AWS_S3_ADDRESSING_STYLE": "virtual"},
    {"AWS_S3_ENDPOINT_URL": "https://acct.r2.cloudflarestorage.com", "AWS_S3_REGION_NAME": "auto"},
])
def test_the_csp_allows_exactly_the_origin_boto3_signs_urls_for(env):
    computed = settings_from_env({**BUCKET_ENV, **env})
    aws = {name: value for name, value in computed.items() if name.startswith("AWS_")}
    with override_settings(**aws):
        url = urlsplit(S3Storage().url("teams/t/a/image.png"))  # signed locally, no request
    assert computed["MEDIA_BUCKET_ORIGIN"] == f"{url.scheme}://{url.netloc}"
    assert computed["CONTENT_SECURITY_POLICY"]["DIRECTIVES"]["img-src"][-1] == computed["MEDIA_BUCKET_ORIGIN"]


def test_a_bucket_that_is_down_leaves_the_output_to_the_sweeper(membership, emulator, s3_server, s3_media, settings):
    job = start_fibo(membership, FIBO_PARAMS)
    tasks.submit_job(job.pk)
    with bound_socket() as down:  # the store refuses every connection
        use_bucket(settings, {**s3_server.env(s3_media.name),
                              "AWS_S3_ENDPOINT_URL": f"http://127.0.0.1:{down.getsockname()[1]}"})
        finish(job, emulator)
        job = reload_job(job)
        assert (job.status, job.money, job.outputs_fetched) == ("COMPLETED", "charged", False)
        assert (job.fetch_attempts, job.output_error) == (1, ""), "a transient failure, not the job's fault"
        tasks.sweep()  # the sweep goes on past the failure
        assert reload_job(job).fetch_attempts == 2 and not s3_media.keys()
    use_bucket(settings, s3_server.env(s3_media.name))  # the store is back
    tasks.sweep()
    job = reload_job(job)
    assert job.outputs_fetched and job.output_error == ""
    assert s3_media.keys() == sorted(objects_of(job.outputs[0]))

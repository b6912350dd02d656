"""A real S3 API for the tests and the bench: moto's server, as its own process on
127.0.0.1 and a free port, reached over HTTP by the test process, the worker, gunicorn
and the emulator alike, as a bucket would be.

    with S3Server(log_dir) as s3:
        bucket = s3.create_bucket()
        env = s3.env(bucket)          # AWS_* for a child process (gunicorn, qcluster)

In tests, the `s3_media` fixture gives each test a new private bucket and switches the
studio's default storage to it, with the settings studio/settings.py makes of that
environment; `media_env(settings)` points a child process at whichever storage the test
uses. moto refuses an anonymous GET of a private object (403), as S3 does, but does not
check presigned URLs' signatures or expiry: `S3Server.signs` checks the signature as S3
would, and the expiry is read from the URL it covers.
"""

import hmac
import os
import runpy
import secrets
import sys
from unittest import mock
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import boto3
import pytest
from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from studio.processes import Child, free_port
from tests.stack import ROOT

# The variables studio/settings.py reads for media on a bucket.
S3_VARIABLES = ("AWS_STORAGE_BUCKET_NAME", "AWS_S3_ENDPOINT_URL", "AWS_S3_REGION_NAME", "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY", "AWS_S3_ADDRESSING_STYLE", "AWS_QUERYSTRING_EXPIRE")


class S3Server:
    """moto in server mode. Any key pair is accepted; a region other than us-east-1, so
    that a region left out somewhere shows."""

    access_key = "studio-test-access-key"
    secret_key = "studio-test-secret-key"
    region = "eu-west-3"

    def __init__(self, log_dir):
        self.log_dir = log_dir
        self.process = None

    def start(self):
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.process = Child("moto", [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                             {}, self.log_dir)
        try:
            self.process.wait_for_http(f"{self.url}/moto-api/data.json")
        except RuntimeError:
            self.stop()
            raise
        return self

    def stop(self):
        if self.process:
            self.process.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def client(self):
        return boto3.client("s3", endpoint_url=self.url, region_name=self.region, aws_access_key_id=self.access_key,
                            aws_secret_access_key=self.secret_key)

    def create_bucket(self, name=None):
        """A new private bucket (S3's default: no public ACL, no policy); its name."""
        name = name or f"studio-media-{secrets.token_hex(6)}"
        self.client().create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": self.region})
        return name

    def env(self, bucket):
        """The environment that puts a process's media in `bucket`."""
        return {"AWS_STORAGE_BUCKET_NAME": bucket, "AWS_S3_ENDPOINT_URL": self.url,
                "AWS_S3_REGION_NAME": self.region, "AWS_ACCESS_KEY_ID": self.access_key,
                "AWS_SECRET_ACCESS_KEY": self.secret_key}

    def signs(self, url, method="GET"):
        """Whether `url` carries a valid signature v4 of this server's key for `method`:
        what S3 checks and moto does not. Its expiry is in the URL (X-Amz-Date and
        X-Amz-Expires, which the signature covers)."""
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        # The canonical request is made of the query exactly as encoded, less the signature.
        unsigned = parts._replace(query="&".join(pair for pair in parts.query.split("&")
                                                 if not pair.startswith("X-Amz-Signature=")))
        request = AWSRequest(method=method, url=urlunsplit(unsigned))
        request.context["timestamp"] = query["X-Amz-Date"]
        auth = S3SigV4QueryAuth(Credentials(self.access_key, self.secret_key), "s3", self.region)
        expected = auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request)
        return hmac.compare_digest(expected, query["X-Amz-Signature"])

    def keys(self, bucket):
        """Every object's key in `bucket`, sorted."""
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


def settings_from_env(env):
    """What studio/settings.py makes of `env` (on top of this process's environment):
    its module-level settings, computed by running it as a fresh module."""
    with mock.patch.dict(os.environ, env):
        return runpy.run_path(str(ROOT / "studio" / "settings.py"))


def use_bucket(settings, env):
    """Point `settings` (pytest-django's fixture, which restores them) at the bucket in
    `env`: the AWS_* settings, the image sources of the CSP, and last the default
    storage. Changing STORAGES resets Django's storage registry and `default_storage`
    (django.test.signals), and model FileFields hold `default_storage` itself, so they
    follow."""
    computed = settings_from_env(env)
    for name, value in computed.items():
        if name.startswith("AWS_") or name == "MEDIA_BUCKET_ORIGIN":
            setattr(settings, name, value)
    settings.CONTENT_SECURITY_POLICY = computed["CONTENT_SECURITY_POLICY"]
    settings.STORAGES = {**settings.STORAGES, "default": computed["STORAGES"]["default"]}


def media_env(settings):
    """Environment that points a child process at the media storage this test uses: the
    bucket's variables, or MEDIA_ROOT."""
    if not getattr(settings, "AWS_STORAGE_BUCKET_NAME", ""):
        return {"MEDIA_ROOT": str(settings.MEDIA_ROOT)}
    return {name: str(getattr(settings, name)) for name in S3_VARIABLES if getattr(settings, name, None)}


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    with S3Server(tmp_path_factory.mktemp("moto")) as server:
        yield server


@pytest.fixture
def s3_media(s3_server, settings):
    """A new private bucket for this test, the studio's media in it. Returns a handle
    with `.server`, `.bucket`, `.client` and `.keys()`."""
    bucket = s3_server.create_bucket()
    use_bucket(settings, s3_server.env(bucket))
    return Bucket(s3_server, bucket)


class Bucket:
    def __init__(self, server, name):
        self.server, self.name = server, name
        self.client = server.client()

    def keys(self):
        return self.server.keys(self.name)

    def read(self, key):
        return self.client.get_object(Bucket=self.name, Key=key)["Body"].read()

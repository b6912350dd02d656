"""The development secret key: random per checkout, kept in var/ and shared by every
process of `make run`; never a key that anyone can read in the source. Production still
names its own."""

import os
import subprocess
import sys

from django.conf import settings
from django.core import signing
from django.test import Client

from devtools.emulator.images import render_fibo
from studio.library.models import Asset
from tests.stack import ROOT

# What the studio signed with before: a key printed in the source, known to anyone.
PUBLISHED_KEY = "dev-only-insecure-key-do-not-use-in-production"
SHOW_KEY = "from django.conf import settings; print(settings.SECRET_KEY)"


def start(var_dir, **env):
    clean = {k: v for k, v in os.environ.items() if k not in ("DJANGO_DEBUG", "DJANGO_SECRET_KEY", "PIXAZO_API_KEY")}
    return subprocess.Popen([sys.executable, "-c", SHOW_KEY], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**clean, "DJANGO_SETTINGS_MODULE": "studio.settings", "STUDIO_VAR_DIR": str(var_dir),
                                 **env})


def key_of(process):
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    return out.strip()


def source_text():
    return "".join(path.read_text() for folder in ("studio", "jobs") for path in (ROOT / folder).rglob("*.py"))


def test_the_key_in_settings_is_random_and_not_in_the_source():
    assert len(settings.SECRET_KEY) >= 50 and len(set(settings.SECRET_KEY)) > 5
    assert settings.SECRET_KEY not in source_text() and settings.SECRET_KEY != PUBLISHED_KEY


def test_a_new_checkout_makes_its_key_once_in_var_and_keeps_it_private(tmp_path):
    key = key_of(start(tmp_path / "var"))
    kept = tmp_path / "var" / "secret_key"
    assert kept.read_text() == key and len(key) >= 50
    assert kept.stat().st_mode & 0o777 == 0o600
    assert os.listdir(tmp_path / "var") == ["secret_key"]
    assert key_of(start(tmp_path / "var")) == key, "a later process reads the same key"
    assert key_of(start(tmp_path / "elsewhere")) != key, "another checkout has its own"


def test_the_processes_of_make_run_starting_together_share_one_key(tmp_path):
    processes = [start(tmp_path) for _ in range(4)]  # web, worker, emulator, and a migrate
    keys = {key_of(process) for process in processes}
    assert keys == {(tmp_path / "secret_key").read_text()}
    assert sorted(os.listdir(tmp_path)) == ["secret_key"], "no draft is left behind"


def test_a_key_from_the_environment_wins_and_nothing_is_written(tmp_path):
    assert key_of(start(tmp_path, DJANGO_SECRET_KEY="from-the-environment-" * 3)) == "from-the-environment-" * 3
    assert not (tmp_path / "secret_key").exists()


def test_production_still_requires_its_own_key(tmp_path):
    process = start(tmp_path, DJANGO_DEBUG="false", PIXAZO_API_KEY="k")
    _, err = process.communicate(timeout=60)
    assert process.returncode != 0 and "DJANGO_SECRET_KEY must be set" in err.splitlines()[-1]
    assert not (tmp_path / "secret_key").exists(), "production never falls back to a key of its own"


def test_a_media_url_signed_with_the_published_key_serves_nothing(team):
    asset = Asset.from_bytes(render_fibo("x", 1, "1:1"), team=team, role="output")
    asset.save()
    forged = signing.TimestampSigner(key=PUBLISHED_KEY, salt="studio.library.media").sign(str(asset.code))
    assert Client(HTTP_HOST="127.0.0.1").get(f"/m/{forged}/").status_code == 404

"""Nothing process-local in production: with DJANGO_DEBUG=false a cache that is not
shared by every process (the API's rate counters and the login rate limits live in it) is a
system check error, and every production process refuses to start with it: the release
step's `migrate`, `qcluster`, and gunicorn, which runs no checks by itself
(studio/wsgi.py runs them)."""

import os
import subprocess
import sys

import pytest
from django.core import checks
from django.test import override_settings

from studio.ops.checks import shared_cache_in_production
from tests.stack import ROOT

LOCMEM = "django.core.cache.backends.locmem.LocMemCache"
UNSHARED = [LOCMEM, "django.core.cache.backends.dummy.DummyCache",
            "django.core.cache.backends.filebased.FileBasedCache"]
SHARED = ["django.core.cache.backends.redis.RedisCache", "django.core.cache.backends.memcached.PyMemcacheCache",
          "django.core.cache.backends.db.DatabaseCache"]
PRODUCTION = {"DJANGO_DEBUG": "false", "DJANGO_SECRET_KEY": "k3Qv9-" * 10, "PIXAZO_API_KEY": "x"}
OWN_ENV = ("DATABASE_URL", "REDIS_URL", "CACHE_URL", "DJANGO_DEBUG", "DJANGO_SECRET_KEY", "PIXAZO_API_KEY")


def cache(backend):
    return {"default": {"BACKEND": backend, "LOCATION": "/tmp/unused"}}


@pytest.mark.parametrize("backend", UNSHARED)
def test_production_with_an_unshared_cache_is_an_error_naming_the_variables(backend):
    with override_settings(DEBUG=False, CACHES=cache(backend)):
        [error] = shared_cache_in_production(None)
    assert error.level == checks.ERROR and error.id == "ops.E001"
    assert backend in error.msg and "rate limit" in error.msg and "login rate limits" in error.msg
    assert "CACHE_URL" in error.hint and "REDIS_URL" in error.hint


@pytest.mark.parametrize("backend", SHARED)
def test_production_with_a_shared_cache_passes(backend):
    with override_settings(DEBUG=False, CACHES=cache(backend)):
        assert shared_cache_in_production(None) == []


def test_development_keeps_its_cache_in_memory():
    with override_settings(DEBUG=True, CACHES=cache(LOCMEM)):
        assert shared_cache_in_production(None) == []


def test_the_check_runs_with_django_s_cache_checks():
    with override_settings(DEBUG=False, CACHES=cache(LOCMEM)):
        assert "ops.E001" in [error.id for error in checks.run_checks(tags=[checks.Tags.caches])]


def run(args, tmp_path, **env):
    clean = {k: v for k, v in os.environ.items() if k not in OWN_ENV}
    env = {**clean, "DJANGO_SETTINGS_MODULE": "studio.settings", "STUDIO_VAR_DIR": str(tmp_path),
           "SQLITE_PATH": str(tmp_path / "studio.sqlite3"), **PRODUCTION, **env}
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)


@pytest.mark.parametrize("process", [
    ["manage.py", "check"],
    ["manage.py", "migrate", "--no-input"],
    ["manage.py", "qcluster"],
    ["-m", "gunicorn", "studio.wsgi", "--bind", "127.0.0.1:0", "--workers", "1"],
], ids=["check", "migrate", "qcluster", "gunicorn"])
def test_every_production_process_refuses_to_start_without_a_shared_cache(process, tmp_path):
    result = run(process, tmp_path)
    assert result.returncode != 0
    assert "ops.E001" in result.stderr and "CACHE_URL" in result.stderr
    assert "Applying" not in result.stdout


@pytest.mark.parametrize("variable", ["CACHE_URL", "REDIS_URL"])
def test_production_starts_with_a_shared_cache(variable, tmp_path):
    result = run(["manage.py", "check"], tmp_path, **{variable: "redis://127.0.0.1:6379/0"})
    assert result.returncode == 0, result.stderr

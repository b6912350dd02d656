"""The release step and the files that deploy the studio: the Procfile is what the
production test runs, and the container files run the very same commands."""

import re
import secrets
import subprocess
import sys

import pytest
import yaml

from tests.production import procfile
from tests.stack import ROOT


def run_release(tmp_path, **env):
    production = {
        "PATH": f"{sys.prefix}/bin:/usr/bin:/bin", "DJANGO_DEBUG": "false", "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "PIXAZO_API_KEY": "release-test", "DATABASE_URL": "", "SQLITE_PATH": str(tmp_path / "studio.sqlite3"),
        "STUDIO_VAR_DIR": str(tmp_path / "var"), "STATIC_ROOT": str(tmp_path / "static"),
        "CACHE_URL": "redis://127.0.0.1:6379/9", "REDIS_URL": "", **env,
    }
    command = procfile()["release"]
    return subprocess.run(["bash", "-c", f"exec {command}"], cwd=ROOT, env=production, capture_output=True,
                          text=True, timeout=300)


def test_the_release_step_migrates_and_collects_static_files(tmp_path):
    result = run_release(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Release done" in result.stdout
    manifest = (tmp_path / "static" / "staticfiles.json").read_text()
    assert "img/favicon.svg" in manifest and "css/studio.css" in manifest
    tables = subprocess.run(["sqlite3", str(tmp_path / "studio.sqlite3"), ".tables"], capture_output=True, text=True)
    if tables.returncode == 0:  # the sqlite3 shell is optional on a developer's machine
        assert "jobs_job" in tables.stdout and "billing_entry" in tables.stdout


def test_the_release_step_refuses_a_configuration_that_would_not_work(tmp_path):
    # Without a shared cache, every web process would count logins and API calls alone.
    result = run_release(tmp_path, CACHE_URL="")
    assert result.returncode != 0
    assert "CACHE_URL" in result.stderr + result.stdout
    assert not (tmp_path / "static" / "staticfiles.json").exists()


def test_the_release_step_stops_on_a_bad_variable(tmp_path):
    result = run_release(tmp_path, SECURE_HSTS_SECONDS="a year")
    assert result.returncode != 0 and "SECURE_HSTS_SECONDS" in result.stderr


def test_the_procfile_names_the_three_processes():
    assert procfile() == {
        "release": "python manage.py release",
        "web": "gunicorn -c python:studio.ops.gunicorn studio.wsgi --bind 0.0.0.0:${PORT:-8000} --workers ${WEB_CONCURRENCY:-2}",
        "worker": "python manage.py qcluster",
    }


def test_compose_runs_the_procfiles_commands():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    for name, command in procfile().items():
        assert compose["services"][name]["command"] == ["bash", "-c", f"exec {command}"], name
    assert {"postgres", "redis", "minio"} <= set(compose["services"])


def test_the_image_runs_the_procfiles_web_command_as_a_user_without_privileges():
    dockerfile = (ROOT / "Dockerfile").read_text()
    cmd = re.search(r"^CMD (.+)$", dockerfile, re.M).group(1)
    assert cmd == f'["bash", "-c", "exec {procfile()["web"]}"]'
    assert re.search(r"^USER studio$", dockerfile, re.M)
    assert "collectstatic" in dockerfile
    assert dockerfile.count("FROM ") == 2  # build stage, then the runtime image


@pytest.mark.parametrize("requirement", ["honcho", "pytest", "moto", "aiosmtpd", "numpy", "opencv"])
def test_the_image_installs_only_runtime_requirements(requirement):
    runtime = (ROOT / "requirements.txt").read_text().lower()
    assert not re.search(rf"^{requirement}", runtime, re.M)

"""Start-up configuration: working defaults, and a bad value stops the process with a
message that names the variable."""

import os
import subprocess
import sys

import pytest

from tests.stack import ROOT

CHECK = ("import django; django.setup(); from django.conf import settings; "
         "print(settings.DATABASES['default']['ENGINE'], settings.Q_CLUSTER.get('redis', 'orm'))")


def start(check=CHECK, **env):
    clean = {k: v for k, v in os.environ.items()
             if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_DEBUG", "DJANGO_SECRET_KEY", "PIXAZO_API_KEY")}
    return subprocess.run([sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={**clean, "DJANGO_SETTINGS_MODULE": "studio.settings", **env})


def test_the_defaults_are_sqlite_and_the_orm_broker(tmp_path):
    result = start(STUDIO_VAR_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.db.backends.sqlite3", "orm"]


def test_database_and_redis_urls_select_postgresql_and_redis(tmp_path):
    result = start(DATABASE_URL="postgres://u@127.0.0.1:5432/x", REDIS_URL="redis://127.0.0.1:6379/0")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.db.backends.postgresql", "redis://127.0.0.1:6379/0"]


OPTIONS = ("import django; django.setup(); from django.conf import settings; "
           "print(sorted(settings.DATABASES['default'].get('OPTIONS', {}).items()))")
POSTGRES = "postgres://u@127.0.0.1:5432/x"


def test_postgresql_binds_on_the_server_and_prepares_repeated_statements():
    result = start(OPTIONS, DATABASE_URL=POSTGRES)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[('prepare_threshold', 5), ('server_side_binding', True)]"


def test_prepared_statements_can_be_turned_off_for_a_transaction_pooler():
    result = start(OPTIONS, DATABASE_URL=POSTGRES, DATABASE_PREPARED_STATEMENTS="false")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


CURSORS = ("import django; django.setup(); from django.conf import settings; "
           "print(settings.DATABASES['default']['DISABLE_SERVER_SIDE_CURSORS'])")


@pytest.mark.parametrize("value, disabled", [("", "False"), ("true", "False"), ("false", "True")])
def test_server_side_cursors_can_be_turned_off_for_a_transaction_pooler(value, disabled):
    result = start(CURSORS, DATABASE_URL=POSTGRES, DATABASE_SERVER_SIDE_CURSORS=value)
    assert (result.returncode, result.stdout.strip()) == (0, disabled), result.stderr


@pytest.mark.parametrize("name, value", [
    ("DATABASE_PREPARED_STATEMENTS", "sometimes"),
    ("DATABASE_SERVER_SIDE_CURSORS", "sometimes"),
    ("DATABASE_URL", "nonsense://what"),
    ("REDIS_URL", "http://127.0.0.1:6379"),
    ("PIXAZO_BASE_URL", "gateway.pixazo.ai"),
    ("PUBLIC_BASE_URL", "ftp://studio.example"),
    ("DJANGO_DEBUG", "maybe"),
    ("Q_WORKERS", "many"),
    ("Q_WORKERS", "0"),
    ("Q_STOP_SECONDS", "0"),
    ("PIXAZO_TIMEOUT_SECONDS", "-1"),
    ("PIXAZO_WEBHOOK_MODE", "always"),
])
def test_a_bad_value_stops_start_up_naming_the_variable(name, value, tmp_path):
    result = start(STUDIO_VAR_DIR=str(tmp_path), **{name: value})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and name in result.stderr.splitlines()[-1]


@pytest.mark.parametrize("missing", ["DJANGO_SECRET_KEY", "PIXAZO_API_KEY"])
def test_production_needs_its_secrets(missing, tmp_path):
    env = {"DJANGO_DEBUG": "false", "DJANGO_SECRET_KEY": "s" * 50, "PIXAZO_API_KEY": "k", "STUDIO_VAR_DIR": str(tmp_path)}
    env.pop(missing)
    result = start(**env)
    assert result.returncode != 0 and missing in result.stderr.splitlines()[-1]

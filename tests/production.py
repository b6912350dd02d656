"""The production topology, started the way the README tells an operator to run it: the
Procfile's own commands with `DJANGO_DEBUG=false`, behind a TLS proxy (nginx, the
README's proxy settings), on PostgreSQL (a fresh database), Redis (a server of its own,
so a test can stop it), media in an S3 bucket (moto's server), mail to an SMTP server
(aiosmtpd) and the gateway emulator as the gateway.

Nothing here is a stand-in for the studio's own code: the processes are gunicorn and
`manage.py qcluster` exactly as the Procfile names them.
"""

import os
import secrets
import shlex
import shutil
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg

from tests.stack import ROOT, Process, free_port, wait_until

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def procfile(path=ROOT / "Procfile"):
    """{process name: command}, as a Procfile runner reads it."""
    entries = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, command = line.split(":", 1)
            entries[name.strip()] = command.strip()
    return entries


def self_signed_certificate(folder):
    """A certificate for 127.0.0.1, its own authority: the proxy serves it, and the
    gateway emulator (which calls webhooks over HTTPS) trusts it through SSL_CERT_FILE."""
    cert, key = folder / "tls.crt", folder / "tls.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-addext", "basicConstraints=critical,CA:TRUE",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


# A TLS proxy as the README's "Deploying" section sets one up: TLS ends here, and the
# studio's own proxy lines (deploy/proxy.conf) pass the scheme, the client's address and
# a request id on.
NGINX_CONF = """
daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 512; }}
http {{
  access_log {tmp}/nginx-access.log;
  client_body_temp_path {tmp}/nginx-body;
  proxy_temp_path {tmp}/nginx-proxy;
  fastcgi_temp_path {tmp}/nginx-fastcgi;
  uwsgi_temp_path {tmp}/nginx-uwsgi;
  scgi_temp_path {tmp}/nginx-scgi;
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    location / {{
      proxy_pass http://127.0.0.1:{upstream};
      include {root}/deploy/proxy.conf;
    }}
  }}
}}
"""


def missing_tools():
    return [tool for tool in (NGINX, REDIS_SERVER, shutil.which("openssl") or "openssl") if not Path(tool).exists()]


@dataclass
class Production:
    """The running topology. `url` is the proxy's HTTPS address, the public one."""

    tmp: Path
    database_url: str
    env: dict
    url: str = ""
    redis_port: int = 0
    children: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)

    def start(self, name, command, env=None):
        """A Procfile command, through a shell as a Procfile runner runs it."""
        child = Process(name, ["bash", "-c", f"exec {command}"], {**self.env, **(env or {})}, self.tmp)
        self.children[name] = child
        return child

    def manage(self, name, *args, env=None):
        """A one-off `python manage.py …` with the production environment; its exit code."""
        child = Process(name, ["bash", "-c", "exec python manage.py " + shlex.join(args)],
                        {**self.env, **(env or {})}, self.tmp)
        code = child.popen.wait(300)
        return code, child.output()

    def start_redis(self):
        self.children["redis"] = Process("redis", [REDIS_SERVER, "--port", str(self.redis_port), "--bind", "127.0.0.1",
                                                   "--save", "", "--appendonly", "no"], {}, self.tmp)
        wait_until(lambda: _redis_answers(self.redis_port), seconds=20, what="redis-server answering")

    def stop_redis(self):
        self.children.pop("redis").stop()

    def http(self):
        return httpx.Client(base_url=self.url, verify=ssl.create_default_context(cafile=self.tmp / "tls.crt"),
                            timeout=20)

    def sql(self, query, *params):
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            return conn.execute(query, params).fetchall()

    def stop(self):
        for child in reversed(list(self.children.values())):
            child.stop()
        self.children.clear()


def _redis_answers(port):
    try:
        import redis

        return redis.Redis(port=port, socket_timeout=1).ping()
    except Exception:  # noqa: BLE001 - not up yet, whatever the reason
        return False


def fresh_database(admin_url):
    """A new, empty PostgreSQL database on the server of `admin_url`; its URL."""
    name = f"prod_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, admin_url.rsplit("/", 1)[0] + f"/{name}"


def drop_database(admin_url, name):
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def timed(timings, name):
    """Records how long a phase took, in seconds, for the run's figures."""
    class _Timer:
        def __enter__(self):
            self.start = time.monotonic()

        def __exit__(self, *exc):
            timings[name] = round(time.monotonic() - self.start, 2)

    return _Timer()


def base_environment(tmp, database_url, redis_port, emulator_port, public_url):
    """Production settings, as an operator sets them (README, "Deploying")."""
    return {
        # The Procfile says `python` and `gunicorn`: the virtualenv's, as on a server.
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1",
        "PUBLIC_BASE_URL": public_url,
        "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto",
        "CLIENT_IP_HEADER": "X-Forwarded-For",
        "DATABASE_URL": database_url,
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "PIXAZO_BASE_URL": f"http://127.0.0.1:{emulator_port}",
        "PIXAZO_API_KEY": "production-test-key",
        "STATIC_ROOT": str(tmp / "static"),
        "Q_WORKERS": "2",
        "LOG_FORMAT": "json",
        "METRICS_TOKEN": secrets.token_urlsafe(24),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp / "prometheus"),
        "STUDIO_VAR_DIR": str(tmp / "var"),
        "DJANGO_SETTINGS_MODULE": "studio.settings",
        "PYTHONUNBUFFERED": "1",
    }

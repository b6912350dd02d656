"""How much memory a web worker spends on uploads it refuses (studio/uploads.py): gunicorn
started as the Procfile starts it (2 workers, DJANGO_DEBUG=false, behind a TLS proxy as
far as the studio can tell), then clients that each stream a large upload to the RMBG
form at once, as a member (over the upload limit) and as a viewer (who runs nothing).
The figure is each worker's peak resident memory (VmHWM in /proc/<pid>/status) after it
has served pages, and again after the uploads; gunicorn is restarted between the two
runs so each starts from fresh workers.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/scratch REDIS_URL=redis://127.0.0.1:6379/13 \\
        .venv/bin/python -m tests.upload_memory [--clients 8] [--megabytes 300]

The database is migrated and gets a team `upload-memory` with a member and a viewer.
Prints one JSON object. Not a test (pytest does not collect it): it takes a minute and
measures the machine as much as the code.
"""

import argparse
import io
import json
import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

ENV = {
    "DJANGO_SETTINGS_MODULE": "studio.settings",
    "DJANGO_DEBUG": "false",
    "DJANGO_SECRET_KEY": "upload-memory-" + "k" * 50,
    "ALLOWED_HOSTS": "127.0.0.1",
    "PIXAZO_API_KEY": "upload-memory-key",
    "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto",
}
BOUNDARY = "upload-memory-boundary"
CSRF_SECRET = "u" * 32  # as a browser holding the form would send it: cookie and header
CHUNK = b"\0" * (1024 * 1024)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--megabytes", type=int, default=300)
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL") or not os.environ.get("REDIS_URL"):
        sys.exit("Set DATABASE_URL (a scratch PostgreSQL database) and REDIS_URL (the shared cache).")
    with tempfile.TemporaryDirectory(prefix="upload-memory-") as scratch:
        os.environ.update(ENV, STATIC_ROOT=f"{scratch}/static")
        import django

        django.setup()
        cookies = prepare()
        figures = {"clients": args.clients, "megabytes": args.megabytes}
        for role in ("member", "viewer"):
            figures[role] = measure(cookies[role], args.clients, args.megabytes * 1024 * 1024, Path(scratch, role))
    print(json.dumps(figures, indent=2))


def prepare():
    """Migrate, collect static files (the refusal is a page), and log in the cast: the
    session cookie of each."""
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.test import Client

    from studio.accounts.models import Membership, Role, Team

    call_command("migrate", verbosity=0, interactive=False)
    call_command("collectstatic", verbosity=0, interactive=False)
    owner, _ = User.objects.get_or_create(username="upload-memory-owner")
    team = Team.objects.filter(slug="upload-memory").first() or Team.create_for(owner, "Upload memory",
                                                                                  slug="upload-memory")
    cookies = {}
    for role in (Role.MEMBER, Role.VIEWER):
        user, _ = User.objects.get_or_create(username=f"upload-memory-{role}")
        Membership.objects.get_or_create(team=team, user=user, defaults={"role": role})
        client = Client()
        client.force_login(user)
        cookies[str(role)] = f"sessionid={client.cookies['sessionid'].value}; csrftoken={CSRF_SECRET}"
    return cookies


def measure(cookie, clients, size, log_dir):
    from studio.processes import Child, free_port

    port = free_port()
    log_dir.mkdir()
    web = Child("gunicorn", [sys.executable, "-m", "gunicorn", "-c", "python:studio.ops.gunicorn", "studio.wsgi",
                             "--bind", f"127.0.0.1:{port}", "--workers", "2"], {}, log_dir)
    try:
        web.wait_for_http(f"http://127.0.0.1:{port}/healthz")
        workers = worker_pids(web.pid)
        serve_pages(port, cookie)
        before = {pid: memory(pid) for pid in workers}
        started = time.monotonic()
        statuses = upload_at_once(port, cookie, clients, size)
        seconds = round(time.monotonic() - started, 2)
        after = {pid: memory(pid) for pid in workers}
    finally:
        web.stop()
    return {"statuses": sorted(statuses), "seconds": seconds, "workers": [
        {"pid": pid, "peak_mb_before": before[pid]["VmHWM"], "peak_mb_after": after[pid]["VmHWM"],
         "rss_mb_after": after[pid]["VmRSS"]} for pid in workers]}


def worker_pids(master, count=2, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        if len(children) >= count:
            return [int(pid) for pid in children]
        time.sleep(0.1)
    raise RuntimeError(f"gunicorn did not start {count} workers in {seconds} s")


def memory(pid):
    """VmHWM and VmRSS of the process, in MB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmHWM", "VmRSS"):
            fields[name] = round(int(value.split()[0]) / 1024, 1)
    return fields


def serve_pages(port, cookie, rounds=20):
    """Every worker renders the studio page a few times first, so the figures before
    the uploads are those of a worker in service, not one that has just booted."""
    threads = [threading.Thread(target=request, args=(port, b"GET /studio/ HTTP/1.1\r\n" + headers(cookie) + b"\r\n"))
               for _ in range(rounds)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def headers(cookie, **extra):
    lines = {"Host": "127.0.0.1", "Cookie": cookie, "X-CSRFToken": CSRF_SECRET, "X-Forwarded-Proto": "https",
             "Connection": "close", **extra}
    return b"".join(f"{name}: {value}\r\n".encode() for name, value in lines.items())


def request(port, head, body=(), statuses=None):
    """Send `head` then the chunks of `body` until the server stops reading; the status."""
    with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
        try:
            sock.sendall(head)
            for chunk in body:
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before the end: the answer may still be there to read
        try:
            status = int(sock.makefile("rb").readline().split()[1])
        except (ConnectionResetError, IndexError, OSError):
            status = "reset"
    if statuses is not None:
        statuses.append(status)
    return status


def upload_at_once(port, cookie, clients, size):
    preamble = (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="image"; filename="big.png"\r\n'
                "Content-Type: image/png\r\n\r\n").encode() + small_png()
    ending = f"\r\n--{BOUNDARY}--\r\n".encode()
    filler = size - len(preamble) - len(ending)
    head = b"POST /studio/rmbg/ HTTP/1.1\r\n" + headers(
        cookie, **{"Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
                   "Content-Length": str(size), "Origin": "https://127.0.0.1"}) + b"\r\n"

    def body():
        yield preamble
        for _ in range(filler // len(CHUNK)):
            yield CHUNK
        yield CHUNK[:filler % len(CHUNK)]
        yield ending

    statuses = []
    threads = [threading.Thread(target=request, args=(port, head, body(), statuses)) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def small_png():
    """A real PNG, so that what follows it is the only thing wrong with the upload."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(out, "PNG")
    return out.getvalue()


if __name__ == "__main__":
    main()

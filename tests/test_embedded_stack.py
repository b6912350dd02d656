"""The embedded defaults hold up under real use: the same processes `make run` starts
(Procfile.dev through honcho: runserver, qcluster on the ORM broker, the emulator) on a
fresh SQLite file, twenty jobs submitted back to back over HTTP, all of them finish,
and no process ever logs "database is locked"."""

import os
import re
import sqlite3
import sys
from pathlib import Path

import httpx
import pytest

from tests.stack import Process, bound_socket, wait_for_http, wait_until

pytestmark = pytest.mark.e2e

JOBS = 20


@pytest.fixture
def stack(tmp_path):
    with bound_socket() as web, bound_socket() as gateway:  # held together: two different ports
        port, emulator_port = web.getsockname()[1], gateway.getsockname()[1]
    env = {
        "DATABASE_URL": "", "REDIS_URL": "", "SQLITE_PATH": str(tmp_path / "studio.sqlite3"),
        "MEDIA_ROOT": str(tmp_path / "media"), "PORT": str(port), "EMULATOR_PORT": str(emulator_port),
        "PIXAZO_BASE_URL": f"http://127.0.0.1:{emulator_port}", "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "PIXAZO_API_KEY": "emulator-key", "DJANGO_DEBUG": "true",
        # Procfile.dev says `python`: the virtualenv's, as under `make run`.
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    for command in (["migrate", "--no-input", "-v0"], ["seed_demo"]):
        setup = Process.manage(command[0], command, env, tmp_path)
        assert setup.popen.wait(120) == 0, setup.output()
        setup.stop()
    # Exactly what `make run` starts. Without DATABASE_URL and REDIS_URL the children
    # fall back to the embedded defaults, whatever the suite itself runs on.
    honcho = Process("honcho", [str(Path(sys.executable).parent / "honcho"), "-f", "Procfile.dev", "start"], env, tmp_path)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz")
        wait_for_http(f"http://127.0.0.1:{emulator_port}/_emulator/requests")
        yield {"url": f"http://127.0.0.1:{port}", "db": env["SQLITE_PATH"], "logs": honcho}
    finally:
        honcho.stop()


def logged_in(url):
    client = httpx.Client(base_url=url, timeout=20, follow_redirects=False)
    page = client.get("/accounts/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    response = client.post("/accounts/login/", data={"login": "demo", "password": "demo-studio-2026",
                                                     "csrfmiddlewaretoken": token})
    assert response.status_code == 302, response.text
    return client


def statuses(db):
    with sqlite3.connect(db, timeout=30) as conn:
        return conn.execute("select status, outputs_fetched, money from jobs_job").fetchall()


def test_twenty_jobs_back_to_back_on_sqlite_all_finish(stack):
    client = logged_in(stack["url"])
    client.get("/studio/")
    headers = {"X-CSRFToken": client.cookies["csrftoken"], "HX-Request": "true"}
    for n in range(JOBS):
        data = {"prompt": f"balloon number {n}", "aspect_ratio": "1:1", "steps_num": "30", "guidance_scale": "7.5"}
        response = client.post("/studio/fibo/", data=data, headers=headers)
        assert response.status_code == 200 and "QUEUED" in response.text, response.text[:500]

    def all_done():
        rows = statuses(stack["db"])
        return len(rows) == JOBS and all(s == "COMPLETED" and fetched for s, fetched, _ in rows)

    wait_until(all_done, seconds=120, interval=0.5,
               what=lambda: f"{JOBS} jobs COMPLETED: {statuses(stack['db'])}\n{stack['logs'].output()[-5000:]}")
    assert {money for *_, money in statuses(stack["db"])} == {"charged"}
    page = client.get("/studio/").text
    assert "<strong>$14.20</strong> available" in page  # $10 demo credit + $5 first top-up bonus
    assert "database is locked" not in stack["logs"].output()

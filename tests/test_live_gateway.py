"""An opt-in check of the contract against the real Pixazo gateway, for operators:

    PIXAZO_LIVE=1 PIXAZO_API_KEY=... make test PYTEST_ARGS="-m live"

It spends real money: one FIBO image ($0.04) and one RMBG call ($0.018). Skipped
unless both variables are set."""

import os
import time

import pytest

from jobs.gateway import PixazoClient

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(not (os.environ.get("PIXAZO_LIVE") == "1" and os.environ.get("PIXAZO_API_KEY")),
                       reason="set PIXAZO_LIVE=1 and PIXAZO_API_KEY to check the real gateway"),
]

REAL_GATEWAY = os.environ.get("PIXAZO_LIVE_BASE_URL", "https://gateway.pixazo.ai")


def wait_for_terminal(client, request_id, seconds=300):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = client.status(request_id)
        if status.status in ("COMPLETED", "FAILED", "ERROR"):
            return status
        time.sleep(5)  # the seed's documented cadence
    raise AssertionError(f"{request_id} not terminal after {seconds} s")


@pytest.fixture
def client():
    with PixazoClient(base_url=REAL_GATEWAY, api_key=os.environ["PIXAZO_API_KEY"], timeout=30) as client:
        yield client


def test_fibo_and_rmbg_follow_the_documented_contract(client):
    submitted = client.submit("fibo", {"prompt": "A red bicycle against a white wall", "aspect_ratio": "1:1", "seed": 7})
    assert submitted.request_id.startswith("bria-fibo-bbq-preview_") and submitted.status == "QUEUED"
    assert submitted.polling_url.endswith(f"/v2/requests/status/{submitted.request_id}")
    fibo = wait_for_terminal(client, submitted.request_id)
    assert fibo.status == "COMPLETED", fibo.error
    image, _ = client.download(fibo.media_urls[0])
    assert image[:4] == b"\x89PNG" or image[:3] == b"\xff\xd8\xff"

    rmbg = wait_for_terminal(client, client.submit("rmbg", {"image_url": fibo.media_urls[0]}).request_id)
    assert rmbg.status == "COMPLETED", rmbg.error
    assert rmbg.model_id == "bria-rmbg-2-0-682"

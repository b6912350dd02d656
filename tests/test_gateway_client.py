"""The gateway client against the emulator over real HTTP: the seed's paths, headers,
bodies and error codes, and what is retried."""

import pytest

from jobs.gateway import GatewayError, OutOfBalance, PixazoClient, SubmitOutcomeUnknown
from tests.stack import wait_until

FIBO = {"prompt": "a red bicycle", "aspect_ratio": "16:9", "seed": 5555, "steps_num": 50, "guidance_scale": 5.0}


@pytest.fixture
def client(emulator):
    with PixazoClient() as client:
        yield client


def test_it_submits_fibo_as_the_seed_documents(client, emulator):
    submitted = client.submit("fibo", FIBO)
    assert submitted.request_id.startswith("bria-fibo-bbq-preview_")
    assert submitted.status == "QUEUED"
    assert submitted.polling_url == f"{emulator.url}/v2/requests/status/{submitted.request_id}"
    [request] = emulator.requests()
    assert request["body"] == FIBO and request["model_id"] == "bria-fibo-bbq-preview"


def test_it_submits_rmbg(client):
    submitted = client.submit("rmbg", {"image_url": "https://example.com/cat.jpg"})
    assert submitted.request_id.startswith("bria-rmbg-2-0-682_")


def test_it_sends_the_webhook_headers(client, emulator):
    client.submit("fibo", FIBO, webhook_url="https://studio.example/hooks/x", webhook_mode="sync")
    [request] = emulator.requests()
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert headers["x-webhook-url"] == "https://studio.example/hooks/x"
    assert headers["x-webhook-mode"] == "sync"


def test_it_reads_the_status_body(client, emulator):
    submitted = client.submit("fibo", FIBO)
    status = client.status(submitted.request_id)
    assert status.request_id == submitted.request_id and status.model_id == "bria-fibo-bbq-preview"
    assert status.status in ("QUEUED", "PROCESSING")
    emulator.complete(submitted.request_id)
    status = client.status(submitted.request_id)
    assert status.status == "COMPLETED"
    assert status.media_urls and status.media_type == "image/png"
    data, content_type = client.download(status.media_urls[0])
    assert data.startswith(b"\x89PNG") and content_type.startswith("image/png")


def test_a_wrong_key_is_a_permanent_401(emulator):
    with PixazoClient(api_key="wrong") as client, pytest.raises(GatewayError) as exc:
        client.submit("fibo", FIBO)
    assert exc.value.status_code == 401 and exc.value.permanent
    assert emulator.requests() == []


def test_a_bad_request_is_a_permanent_400_with_the_gateways_message(client, emulator):
    with pytest.raises(GatewayError) as exc:
        client.submit("fibo", {**FIBO, "guidance_scale": 11})
    assert exc.value.status_code == 400 and exc.value.permanent
    assert "guidance_scale" in str(exc.value)


def test_402_is_out_of_balance_and_not_retried(client, emulator):
    emulator.faults(submit=[402, 402])
    with pytest.raises(OutOfBalance) as exc:
        client.submit("fibo", FIBO)
    assert "Insufficient Balance" in str(exc.value)
    emulator.faults(submit=[])
    # The second injected 402 is still queued: only one attempt was made.
    with pytest.raises(OutOfBalance):
        client.submit("fibo", FIBO)


@pytest.mark.parametrize("code", [429, 500])
def test_429_and_500_are_retried_until_they_pass(client, emulator, code):
    emulator.faults(submit=[code, code])
    submitted = client.submit("fibo", FIBO)
    assert submitted.request_id
    assert len(emulator.requests()) == 1


@pytest.mark.parametrize("code", [429, 500])
def test_retries_are_bounded(client, emulator, code):
    emulator.faults(submit=[code, code, code, code])
    with pytest.raises(GatewayError) as exc:
        client.submit("fibo", FIBO)
    assert exc.value.status_code == code and not exc.value.permanent
    assert emulator.requests() == []


def test_a_status_timeout_is_retried(client, emulator, settings):
    submitted = client.submit("fibo", FIBO)
    emulator.faults(status=["hang:3"])
    assert client.status(submitted.request_id).request_id == submitted.request_id


def test_a_submit_whose_answer_is_lost_is_not_sent_again(client, emulator):
    emulator.faults(submit=["hang:3"])
    with pytest.raises(SubmitOutcomeUnknown):
        client.submit("fibo", FIBO)
    # Its hang over, the gateway takes the job (inside this test, not the next one): once.
    wait_until(emulator.requests, seconds=10, what="the lost submit at the gateway")
    assert len(emulator.requests()) == 1


def test_an_unreachable_gateway_is_a_transient_error(settings):
    with PixazoClient(base_url="http://127.0.0.1:9", max_attempts=2, backoff=0.01) as client:
        with pytest.raises(GatewayError) as exc:
            client.status("bria-fibo-bbq-preview_x")
    assert not exc.value.permanent


def test_an_unknown_request_id_is_404(client):
    with pytest.raises(GatewayError) as exc:
        client.status("bria-fibo-bbq-preview_nope")
    assert exc.value.status_code == 404 and exc.value.permanent

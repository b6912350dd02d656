"""One contract for the gateway's parameters (jobs/contract.py): the same value, sent
through each of the four places that judge one — the studio page's form, the native API,
the studio's gateway-compatible API and the gateway emulator, each over its real HTTP
path — is accepted by all four or refused by all four. And a job the gateway-compatible
API accepts at any bound can be remixed: the form the remix fills in is valid and starts
the same job again."""

import json

import httpx
import pytest
from django.test import Client

from jobs.contract import GATEWAY_MODELS, MAX_SEED
from jobs.models import Job
from studio.api.models import APIKey
from tests.conftest import login

FIBO_PATH, RMBG_PATH = GATEWAY_MODELS["fibo"][1], GATEWAY_MODELS["rmbg"][1]
FORM = {"prompt": "a red balloon", "aspect_ratio": "1:1", "seed": "", "steps_num": "30", "guidance_scale": "7.5"}
URL_2000 = "https://example.com/" + "x" * 1980

# (parameter, value, accepted): values at and around every bound, and bad ones.
FIBO = [
    ("prompt", "x", True),
    ("prompt", "x" * 2000, True),
    ("prompt", " \n" + "x" * 2000 + "\n ", True),  # surrounding whitespace is not the prompt's
    ("prompt", "x" * 2001, False),
    ("prompt", "x" * 9000, False),
    ("prompt", "", False),
    ("prompt", " \t\n ", False),
    ("prompt", "a\x00b", False),
    ("aspect_ratio", "16:9", True),
    ("aspect_ratio", "4:3", True),
    ("aspect_ratio", "1:1", True),
    ("aspect_ratio", "9:16", True),
    ("aspect_ratio", "2:1", False),
    ("aspect_ratio", "1:1 ", False),
    ("seed", 0, True),
    ("seed", MAX_SEED, True),
    ("seed", -1, False),
    ("seed", MAX_SEED + 1, False),
    ("seed", 2**63 - 1, False),
    ("seed", 1.5, False),
    ("steps_num", 1, True),
    ("steps_num", 100, True),
    ("steps_num", 30.0, True),
    ("steps_num", 0, False),
    ("steps_num", 101, False),
    ("steps_num", 30.5, False),
    ("guidance_scale", 5, True),
    ("guidance_scale", 10, True),
    ("guidance_scale", 7.25, True),
    ("guidance_scale", 4.99, False),
    ("guidance_scale", 10.01, False),
    ("guidance_scale", 7.125, False),
]
RMBG = [
    ("image_url", "https://example.com/cat.jpg", True),
    ("image_url", "http://example.com/cat.jpg", True),
    ("image_url", URL_2000, True),
    ("image_url", URL_2000 + "x", False),
    ("image_url", "ftp://example.com/cat.jpg", False),
    ("image_url", "cat.jpg", False),
    ("image_url", "http://", False),
]


def case_id(case):
    name, value, accepted = case
    shown = repr(value) if len(repr(value)) < 24 else f"{repr(value)[:12]}…({len(value)})"
    return f"{name}={shown}-{'accepted' if accepted else 'refused'}"


@pytest.fixture
def key(team, member):
    return APIKey.issue(team, member, "contract")[1]


def form_text(value):
    return value if isinstance(value, str) else str(value)


def through_the_form(member, model, name, value):
    data = {**FORM, name: form_text(value)} if model == "fibo" else {name: value}
    response = login(member).post(f"/studio/{model}/", data)
    assert response.status_code in (302, 400), response.status_code
    return response.status_code == 302


def through_the_native_api(key, model, body):
    response = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {key}").post(
        f"/api/jobs/{model}", json.dumps(body), content_type="application/json")
    assert response.status_code in (201, 422), response.content
    return response.status_code == 201


def through_the_gateway_api(key, model, body):
    response = Client(HTTP_HOST="127.0.0.1").post(GATEWAY_MODELS[model][1], json.dumps(body),
                                                  content_type="application/json", HTTP_OCP_APIM_SUBSCRIPTION_KEY=key)
    assert response.status_code in (202, 400), response.content
    return response.status_code == 202


def through_the_emulator(emulator, model, body):
    emulator.outcomes("FAILED")  # nothing to render or fetch for this job
    response = httpx.post(emulator.url + GATEWAY_MODELS[model][1], json=body,
                          headers={"Ocp-Apim-Subscription-Key": "test-key"}, timeout=10)
    assert response.status_code in (202, 400), response.text
    return response.status_code == 202


def decisions(member, key, emulator, model, name, value):
    body = {"prompt": "a red balloon", name: value} if model == "fibo" else {name: value}
    return {
        "form": through_the_form(member, model, name, value),
        "native API": through_the_native_api(key, model, body),
        "gateway-compatible API": through_the_gateway_api(key, model, body),
        "emulator": through_the_emulator(emulator, model, body),
    }


@pytest.mark.parametrize("case", FIBO, ids=[case_id(case) for case in FIBO])
def test_every_fibo_path_takes_the_same_decision(member, key, emulator, case):
    name, value, accepted = case
    assert decisions(member, key, emulator, "fibo", name, value) == dict.fromkeys(
        ["form", "native API", "gateway-compatible API", "emulator"], accepted)
    assert Job.objects.count() == (3 if accepted else 0)


@pytest.mark.parametrize("case", RMBG, ids=[case_id(case) for case in RMBG])
def test_every_rmbg_path_takes_the_same_decision(member, key, emulator, case):
    name, value, accepted = case
    assert decisions(member, key, emulator, "rmbg", name, value) == dict.fromkeys(
        ["form", "native API", "gateway-compatible API", "emulator"], accepted)
    assert Job.objects.count() == (3 if accepted else 0)


def test_a_refusal_says_the_same_thing_everywhere(member, key, emulator):
    body = {"prompt": "x", "steps_num": 101}
    native = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {key}").post(
        "/api/jobs/fibo", json.dumps(body), content_type="application/json").json()
    studio = Client(HTTP_HOST="127.0.0.1").post(FIBO_PATH, json.dumps(body), content_type="application/json",
                                                HTTP_OCP_APIM_SUBSCRIPTION_KEY=key).json()
    gateway = httpx.post(emulator.url + FIBO_PATH, json=body, headers={"Ocp-Apim-Subscription-Key": "test-key"}).json()
    form = login(member).post("/studio/fibo/", {**FORM, "steps_num": "101"}).context["fibo_form"]
    assert native["details"] == [{"field": "steps_num", "message": "steps_num must be between 1 and 100"}]
    assert studio == gateway == {"error": "Bad Request", "message": "steps_num must be between 1 and 100"}
    assert form.errors == {"steps_num": ["Must be between 1 and 100."]}


BOUNDS = [
    {"prompt": "x" * 2000, "aspect_ratio": "9:16", "seed": MAX_SEED, "steps_num": 100, "guidance_scale": 10},
    {"prompt": "x", "aspect_ratio": "16:9", "seed": 0, "steps_num": 1, "guidance_scale": 5},
    {"prompt": "  a lighthouse\n", "aspect_ratio": "4:3", "steps_num": 30.0, "guidance_scale": 7.25},
    {"prompt": "a lighthouse"},
]


@pytest.mark.parametrize("body", BOUNDS, ids=["upper", "lower", "odd-spellings", "defaults"])
def test_a_job_accepted_at_any_bound_can_be_remixed(member, key, body):
    assert through_the_gateway_api(key, "fibo", body)
    source = Job.objects.get()
    client = login(member)
    form = client.get(f"/studio/?remix={source.code}").context["fibo_form"]
    remixed = {name: "" if form[name].value() is None else str(form[name].value()) for name in form.fields}
    assert remixed["seed"] == str(source.params["seed"]), "the gateway fixed a seed, and the remix keeps it"

    assert client.post("/studio/fibo/", remixed).status_code == 302, "the remix form is valid"
    again = Job.objects.exclude(pk=source.pk).get()
    assert again.params == source.params

"""Properties, checked with hypothesis over arbitrary input:

- the FIBO parameter validators — the studio's form (jobs/forms.py), the gateway's own
  (jobs/contract.py's validate_fibo, which the gateway-compatible API and the emulator
  use) and the native API's schema (jobs/api.py) — accept exactly what the gateway
  contract (jobs/contract.py) allows, turn everything they accept into the gateway's JSON
  body with the right types, and refuse everything else with their own error, never a
  crash;
- a pasted image URL that an API accepts is either usable by the worker's fetch or
  refused by it with FetchRefused, never a crash;
- the job state machine (jobs/transitions.apply_status) only moves forward, ends in the
  first terminal status it hears, and settles the money exactly once, whatever the
  order and repetition of the news.

The contract is written out below as an oracle, once: the two JSON validators are held
to it as they are, and the form to it through the text its fields read (it reads "7.5"
where JSON has 7.5, and "" where JSON leaves the seed out)."""

import json
import math
import re
import string
from decimal import Decimal, InvalidOperation

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from jobs import contract
from jobs.actions import start_fibo
from jobs.api import FiboIn, RmbgIn
from jobs.contract import HttpError, validate_fibo, validate_rmbg
from jobs.addresses import FetchRefused
from jobs.fetch import check_form
from jobs.forms import FiboForm
from jobs.models import RANK, TERMINAL, Job, Status
from jobs.transitions import apply_status
from studio.billing import money
from studio.billing.models import Entry, Wallet
from studio.billing.verify import verify

PROPERTY = settings(max_examples=200, deadline=None, database=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])
FIELDS = ("prompt", "aspect_ratio", "seed", "steps_num", "guidance_scale")
ABSENT = object()  # the field is not in the body at all


# Input: arbitrary JSON values, with more of them near each field's bounds ----------------

SCALARS = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(alphabet=string.ascii_letters + " :", max_size=6),
    st.sampled_from(["", "7.5", "30", "1e3", "5", "-1", "1:1", "16:9", "NaN", "Infinity"]),
)
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=3), inner,
                                                                                            max_size=2), max_leaves=4)
TEXT = st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=12)
BLANK = st.text(alphabet=" \t\r\n\u00a0\u2003", max_size=4)
LIMIT = contract.MAX_PROMPT_LENGTH


def optional(strategy):
    return st.one_of(st.just(ABSENT), strategy)


PROMPTS = optional(st.one_of(
    JSON, TEXT, BLANK,
    st.integers(LIMIT - 5, LIMIT + 5).map(lambda n: "y" * n),
    st.integers(LIMIT - 5, LIMIT + 5).map(lambda n: " " + "y" * n + " "),
    st.sampled_from(["a\x00b", "\ud800", "x" * 10_000]),
))
RATIOS = optional(st.one_of(st.sampled_from(contract.ASPECT_RATIOS + ("2:1", "1:1 ", "16:10", "", "1/1")), JSON))
SEEDS = optional(st.one_of(
    JSON, st.integers(-3, 3), st.integers(contract.MAX_SEED - 2, contract.MAX_SEED + 2),
    st.integers(2**63 - 2, 2**63 + 1), st.integers(-(2**63) - 1, -(2**63) + 1),
    st.sampled_from([1e3, -0.0, 2.0**32, 5.5, math.inf]),
))
STEPS = optional(st.one_of(
    JSON, st.integers(-2, 103),
    st.sampled_from([0.0, 1.0, 30.0, 100.0, 100.5, 101.0, 1.5, True, False, "30", "1e3", math.inf, -math.inf]),
))
GUIDANCE = optional(st.one_of(
    JSON, st.integers(3, 12), st.floats(4.9, 10.1),
    st.decimals(Decimal("4.9"), Decimal("10.1"), places=2).map(float),
    st.decimals(Decimal("4.9"), Decimal("10.1"), places=2).map(str),
    st.sampled_from([5, 10, 5.0, 10.0, 4.99, 10.01, 7.125, 7.1, "7.5", "7.50", "7.500", "1e1", True, 10**400]),
))
ANY = {"prompt": PROMPTS, "aspect_ratio": RATIOS, "seed": SEEDS, "steps_num": STEPS, "guidance_scale": GUIDANCE}
VALID_GUIDANCE = st.one_of(st.sampled_from([5, 10, 5.0, 10.0, 7.5, 9.99]),
                           st.decimals(contract.MIN_GUIDANCE, contract.MAX_GUIDANCE, places=2).map(float))
VALID = st.fixed_dictionaries({
    "prompt": TEXT.filter(str.strip),
    "aspect_ratio": optional(st.sampled_from(contract.ASPECT_RATIOS)),
    "seed": optional(st.one_of(st.sampled_from([0, contract.MAX_SEED, None]), st.integers(0, contract.MAX_SEED))),
    "steps_num": optional(st.one_of(st.sampled_from([contract.MIN_STEPS, contract.MAX_STEPS]),
                                    st.integers(contract.MIN_STEPS, contract.MAX_STEPS))),
    "guidance_scale": optional(VALID_GUIDANCE),
})


@st.composite
def bodies(draw, complete=False):
    """A valid body with up to two of its fields replaced by anything at all; a complete
    one has every field, as the studio's form always sends them."""
    body = draw(VALID)
    if complete:
        body.update(aspect_ratio=draw(st.sampled_from(contract.ASPECT_RATIOS)), steps_num=draw(st.integers(1, 100)),
                    guidance_scale=str(draw(VALID_GUIDANCE)))
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=2, unique=True)):
        body[name] = draw(ANY[name])
    return body


BODIES = bodies()


# The oracle: what the contract documents -------------------------------------------------------

def json_int(value):
    """A JSON integer: 30 or 30.0 (JSON Schema's), never true, "30" or 30.5."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        return int(value)
    return None


def json_decimal(value):
    """A JSON number, exactly as written (7.1 is 7.1); never true or "7.5"."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return None
    if isinstance(value, float):
        return Decimal(repr(value)) if math.isfinite(value) else None
    return Decimal(value) if Decimal(value).is_finite() else None


def is_storable_text(value):
    return "\x00" not in value and not re.search("[\ud800-\udfff]", value)


def contract_errors(body):
    """The fields the contract refuses in a body of JSON values (ABSENT: left out)."""
    bad = set()
    prompt = body["prompt"]
    if not (isinstance(prompt, str) and is_storable_text(prompt) and 0 < len(prompt.strip()) <= LIMIT):
        bad.add("prompt")
    if body["aspect_ratio"] is not ABSENT and body["aspect_ratio"] not in contract.ASPECT_RATIOS:
        bad.add("aspect_ratio")
    seed = body["seed"]
    if seed not in (ABSENT, None) and not (json_int(seed) is not None and 0 <= json_int(seed) <= contract.MAX_SEED):
        bad.add("seed")
    steps = body["steps_num"]
    if steps is not ABSENT and not (json_int(steps) is not None and 1 <= json_int(steps) <= 100):
        bad.add("steps_num")
    guidance = body["guidance_scale"]
    if guidance is not ABSENT and not guidance_allowed(json_decimal(guidance)):
        bad.add("guidance_scale")
    return bad


def guidance_allowed(number):
    """5 to 10, in hundredths at most (7.500 is 7.5; 7.125 is not)."""
    return number is not None and 5 <= number <= 10 and (number * 100) == int(number * 100)


def as_text(value):
    """What a form field holds for a JSON value: its text."""
    return value if isinstance(value, str) else json.dumps(value)


def form_int(text):
    """An integer as the form reads one: digits, a sign, maybe ".0"."""
    if not re.fullmatch(r"[+-]?[0-9]+(\.0*)?", text.strip()):
        return None
    return int(text.strip().split(".")[0])


def decimal_of_text(text):
    try:
        number = Decimal(text)
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def form_values(data):
    """The JSON values a form's text stands for (None where a field cannot read it)."""
    seed = data.get("seed", "")
    return {
        "prompt": data.get("prompt", ""),
        "aspect_ratio": data.get("aspect_ratio"),
        "seed": None if not seed.strip() else form_int(seed) if form_int(seed) is not None else "unreadable",
        "steps_num": form_int(data.get("steps_num", "")),
        "guidance_scale": decimal_of_text(data.get("guidance_scale", "").strip()),
    }


# What every accepted input must become --------------------------------------------------------

def assert_gateway_body(job_params, prompt, aspect_ratio, seed, steps, guidance):
    """The stored parameters are JSON, and their payload is exactly the gateway's body:
    the same values, with the seed document's types; the gateway's validator takes it."""
    assert json.loads(json.dumps(job_params, allow_nan=False)) == job_params
    assert re.fullmatch(r"[0-9]+(\.[0-9]*[1-9])?", job_params["guidance_scale"]), "stored as plain fixed-point text"
    body = contract.fibo_payload(job_params)
    assert json.loads(json.dumps(body, allow_nan=False)) == body
    assert type(body["prompt"]) is str and body["prompt"] == prompt
    assert body["aspect_ratio"] == aspect_ratio
    assert type(body["steps_num"]) is int and body["steps_num"] == steps
    assert type(body["guidance_scale"]) is float and body["guidance_scale"] == float(guidance)
    if seed is None:
        assert "seed" not in body
    else:
        assert type(body["seed"]) is int and body["seed"] == seed
    assert validate_fibo(dict(body))["steps_num"] == steps


def sent_of(body):
    return {name: value for name, value in body.items() if value is not ABSENT}


@PROPERTY
@given(BODIES)
def test_the_gateways_validator_accepts_exactly_the_contract(body):
    sent = sent_of(body)
    bad = contract_errors(body)
    event("refused" if bad else "accepted")
    if bad:
        with pytest.raises(HttpError) as refusal:
            validate_fibo(sent)
        assert refusal.value.status == 400
        assert refusal.value.body["message"].split(" ", 1)[0] in bad, "the message names a field that is wrong"
        return
    clean = validate_fibo(sent)
    if body["seed"] in (ABSENT, None):
        assert clean["seed"] in range(contract.MAX_SEED + 1), "a random seed, fixed at submit"
    else:
        assert clean["seed"] == json_int(body["seed"])
    # As studio/api/gateway.py turns it into the job's parameters.
    assert_gateway_body(contract.fibo_params(**clean), body["prompt"].strip(), sent.get("aspect_ratio", "1:1"),
                        clean["seed"], json_int(sent.get("steps_num", 30)), sent.get("guidance_scale", 7.5))


@PROPERTY
@given(BODIES)
def test_the_native_api_accepts_exactly_the_contract(body):
    sent = sent_of(body)
    bad = contract_errors(body)
    event("refused" if bad else "accepted")
    if bad:
        with pytest.raises(ValidationError) as refusal:
            FiboIn.model_validate(sent)
        assert {str(error["loc"][0]) for error in refusal.value.errors()} == bad, "each wrong field, and only those"
        return
    clean = FiboIn.model_validate(sent)
    # As jobs/api.py turns it into the job's parameters.
    job_params = contract.fibo_params(clean.prompt, clean.aspect_ratio, clean.seed, clean.steps_num,
                                      clean.guidance_scale)
    seed = json_int(body["seed"]) if body["seed"] not in (ABSENT, None) else None
    assert_gateway_body(job_params, body["prompt"].strip(), sent.get("aspect_ratio", "1:1"), seed,
                        json_int(sent.get("steps_num", 30)), sent.get("guidance_scale", contract.DEFAULT_GUIDANCE))


@PROPERTY
@given(bodies(complete=True))
def test_the_studio_form_accepts_exactly_the_contract(body):
    data = {name: as_text(value) for name, value in body.items() if value is not ABSENT}
    form = FiboForm(data)
    values = form_values(data)
    bad = contract_errors(values)
    event("refused" if bad else "accepted")
    assert form.is_valid() == (not bad), (dict(form.errors), bad)
    if bad:
        assert set(form.errors) == bad, "each wrong field, and only those, shows its error"
        return
    assert_gateway_body(form.job_params(), data["prompt"].strip(), data["aspect_ratio"], values["seed"],
                        values["steps_num"], values["guidance_scale"])


# Image URLs -------------------------------------------------------------------------------------

URLS = st.one_of(
    JSON, TEXT,
    st.builds("{}://{}{}{}".format,
              st.sampled_from(["http", "https", "HTTP", "http", "https", "ftp", "file", "javascript", "data", ""]),
              st.one_of(st.sampled_from(["example.com", "127.0.0.1", "2130706433", "0x7f.1", "[::1]",
                                         "[::ffff:127.0.0.1]", "u:p@example.com", "", "exa mple.com", "xn--",
                                         "\u2460.com", "b\u00fccher.de", "[fe80::1%25eth0]", "a..b"]),
                        st.text(alphabet=string.ascii_letters + string.digits + ".-[]:@%", max_size=12)),
              st.sampled_from(["", ":80", ":0", ":99999", ":-1", ":x"]),
              st.sampled_from(["", "/", "/a.png", "/a b.png", "?q=1", "#f", "/\u00e9"])),
)


@PROPERTY
@given(URLS)
def test_an_image_url_an_api_accepts_is_fetched_or_refused_never_a_crash(url):
    accepted = []
    try:
        validate_rmbg({"image_url": url})
        accepted.append("gateway")
    except HttpError as refusal:
        assert refusal.status == 400
    try:
        RmbgIn.model_validate({"image_url": url})
        accepted.append("native")
    except ValidationError:
        pass
    event(f"accepted by {accepted}")
    if accepted:
        assert isinstance(url, str) and re.match(r"(?i)https?://", url)
        try:
            target = check_form(url)
        except FetchRefused:
            return
        assert target.scheme in ("http", "https") and target.host


# The job state machine -------------------------------------------------------------------------------

STATUSES = st.lists(st.sampled_from(list(Status)), max_size=8)
SUBMISSIONS = st.sampled_from([Job.Submission.ACCEPTED, Job.Submission.REJECTED, Job.Submission.SUBMITTING])


def wallet_of(team):
    wallet = Wallet.objects.get(team=team)
    return wallet.balance, wallet.held


def test_statuses_only_move_forward_and_the_money_settles_exactly_once(membership):
    team = membership.team
    money.top_up(team, 50_000_000, reason="room for every example", key="property-credit")

    @settings(max_examples=150, deadline=None, database=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow])
    @given(STATUSES, SUBMISSIONS)
    def run(statuses, submission):
        before = wallet_of(team)
        job = start_fibo(membership, contract.fibo_params("a lighthouse", seed=1))
        Job.objects.filter(pk=job.pk).update(submission=submission, request_id=f"r-{job.code}")
        current = Status.QUEUED
        for status in statuses:
            forward = RANK[status] > RANK[current]
            assert apply_status(job.pk, status) is forward, f"{current} → {status}"
            current = status if forward else current
        job.refresh_from_db()
        first_terminal = next((s for s in statuses if s in TERMINAL), None)
        assert job.status == (first_terminal or current)
        kinds = sorted(Entry.objects.filter(job=job).values_list("kind", flat=True))
        balance, held = before
        if first_terminal is None:
            assert (kinds, job.money) == (["hold"], "held")
            assert wallet_of(team) == (balance, held + job.price)
        elif submission == Job.Submission.ACCEPTED and first_terminal in (Status.COMPLETED, Status.FAILED):
            assert (kinds, job.money) == (["capture", "hold"], "charged")
            assert wallet_of(team) == (balance - job.price, held)
        else:
            assert (kinds, job.money) == (["hold", "release"], "released")
            assert wallet_of(team) == (balance, held)
        assert verify() == []

    run()

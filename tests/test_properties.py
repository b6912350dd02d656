"""Properties, checked with hypothesis over arbitrary input:

- the FIBO parameter validators — the studio's form (jobs/forms.py), the gateway's own
  (jobs/contract.py, which the gateway-compatible API and the emulator use) and the
  native API's schema (jobs/api.py) — accept exactly what the seed document and
  jobs/params.py allow, turn everything they accept into the gateway's JSON body with
  the right types, and refuse everything else with their own error, never a crash;
- a pasted image URL that an API accepts is either usable by the worker's fetch or
  refused by it with FetchRefused, never a crash;
- the job state machine (jobs/transitions.apply_status) only moves forward, ends in the
  first terminal status it hears, and settles the money exactly once, whatever the
  order and repetition of the news.

Each validator's contract is written out below as an oracle. Where the three differ on
purpose the oracle says so: the form reads text; the native API reads 30.0 as 30 and
"7.5" as 7.5 (pydantic's decimals); the gateway's contract keeps its own bounds for the
seed (64-bit) and the prompt (10,000 characters) and takes any precision of guidance.
Known crashes (infinite integers in the native API, NUL and lone surrogates in prompts,
integers beyond a float in the gateway's guidance) are left out of the generated input
here and pinned by xfail tests in tests/test_bad_input.py."""

import json
import math
import re
import string
from decimal import Decimal, InvalidOperation

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from jobs import params
from jobs.actions import start_fibo
from jobs.api import FiboIn, RmbgIn
from jobs.contract import HttpError, validate_fibo, validate_rmbg
from jobs.fetch import FetchRefused, check_form
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
GATEWAY_MAX_PROMPT = 10_000
GATEWAY_SEEDS = range(-(2**63), 2**63)


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


def optional(strategy):
    return st.one_of(st.just(ABSENT), strategy)


PROMPTS = optional(st.one_of(
    JSON, TEXT, BLANK,
    st.integers(1995, 2005).map(lambda n: "y" * n),
    st.integers(1995, 2005).map(lambda n: " " + "y" * n + " "),
    st.integers(GATEWAY_MAX_PROMPT - 3, GATEWAY_MAX_PROMPT + 3).map(lambda n: "z" * n),
))
RATIOS = optional(st.one_of(st.sampled_from(params.ASPECT_RATIOS + ("2:1", "1:1 ", "16:10", "", "1/1")), JSON))
SEEDS = optional(st.one_of(
    JSON, st.integers(-3, 3), st.integers(params.MAX_SEED - 2, params.MAX_SEED + 2),
    st.integers(2**63 - 2, 2**63 + 1), st.integers(-(2**63) - 1, -(2**63) + 1), st.sampled_from([1e3, -0.0, 2.0**32]),
))
STEPS = optional(st.one_of(
    JSON, st.integers(-2, 103), st.sampled_from([0.0, 1.0, 30.0, 100.0, 100.5, 101.0, 1.5, True, False, "30", "1e3"]),
))
GUIDANCE = optional(st.one_of(
    JSON, st.integers(3, 12), st.floats(4.9, 10.1),
    st.decimals(Decimal("4.9"), Decimal("10.1"), places=2).map(float),
    st.decimals(Decimal("4.9"), Decimal("10.1"), places=2).map(str),
    st.sampled_from([5, 10, 5.0, 10.0, 4.99, 10.01, 7.125, "7.5", "7.50", "7.500", "1e1", True]),
))
ANY = {"prompt": PROMPTS, "aspect_ratio": RATIOS, "seed": SEEDS, "steps_num": STEPS, "guidance_scale": GUIDANCE}
VALID_GUIDANCE = st.one_of(st.sampled_from([5, 10, 5.0, 10.0, 7.5, 9.99]),
                           st.decimals(params.MIN_GUIDANCE, params.MAX_GUIDANCE, places=2).map(float))
VALID = st.fixed_dictionaries({
    "prompt": TEXT.filter(str.strip),
    "aspect_ratio": optional(st.sampled_from(params.ASPECT_RATIOS)),
    "seed": optional(st.one_of(st.sampled_from([0, params.MAX_SEED]), st.integers(0, params.MAX_SEED))),
    "steps_num": optional(st.one_of(st.sampled_from([params.MIN_STEPS, params.MAX_STEPS]),
                                    st.integers(params.MIN_STEPS, params.MAX_STEPS))),
    "guidance_scale": optional(VALID_GUIDANCE),
})


@st.composite
def bodies(draw, complete=False):
    """A valid body with up to two of its fields replaced by anything at all; a complete
    one has every field, as the studio's form always sends them."""
    body = draw(VALID)
    if complete:
        body.update(aspect_ratio=draw(st.sampled_from(params.ASPECT_RATIOS)), steps_num=draw(st.integers(1, 100)),
                    guidance_scale=str(draw(VALID_GUIDANCE)))
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=2, unique=True)):
        body[name] = draw(ANY[name])
    return body


BODIES = bodies()


# The oracles: what each validator documents -------------------------------------------------

def is_json_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def is_json_number(value):
    return is_json_int(value) or (isinstance(value, float) and math.isfinite(value))


def decimal_of_text(text):
    try:
        number = Decimal(text)
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def guidance_in_range(number):
    return params.MIN_GUIDANCE <= number <= params.MAX_GUIDANCE


def gateway_errors(body):
    """The fields the gateway's validator must refuse (seed document + its own bounds)."""
    bad = set()
    prompt = body["prompt"]
    if not (isinstance(prompt, str) and prompt.strip() and len(prompt) <= GATEWAY_MAX_PROMPT):
        bad.add("prompt")
    if body["aspect_ratio"] is not ABSENT and body["aspect_ratio"] not in params.ASPECT_RATIOS:
        bad.add("aspect_ratio")
    if body["seed"] is not ABSENT and not (is_json_int(body["seed"]) and body["seed"] in GATEWAY_SEEDS):
        bad.add("seed")
    steps = body["steps_num"]
    if steps is not ABSENT and not (is_json_int(steps) and params.MIN_STEPS <= steps <= params.MAX_STEPS):
        bad.add("steps_num")
    guidance = body["guidance_scale"]
    if guidance is not ABSENT and not (is_json_number(guidance) and guidance_in_range(Decimal(guidance))):
        bad.add("guidance_scale")
    return bad


def native_int(value):
    """The native API's integers: JSON Schema's, so 30 and 30.0 but never true or "30"."""
    if is_json_int(value):
        return value
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        return int(value)
    return None


def native_decimal(value):
    """pydantic's lax decimals: a number, or a string holding one."""
    if isinstance(value, bool):
        return None
    if is_json_int(value):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(str(value)) if math.isfinite(value) else None
    return decimal_of_text(value) if isinstance(value, str) else None


def native_errors(body):
    bad = set()
    prompt = body["prompt"]
    if not (isinstance(prompt, str) and prompt.strip() and len(prompt) <= params.MAX_PROMPT_LENGTH):
        bad.add("prompt")
    if body["aspect_ratio"] is not ABSENT and body["aspect_ratio"] not in params.ASPECT_RATIOS:
        bad.add("aspect_ratio")
    seed = body["seed"]
    if seed not in (ABSENT, None) and not (native_int(seed) is not None and 0 <= native_int(seed) <= params.MAX_SEED):
        bad.add("seed")
    steps = body["steps_num"]
    if steps is not ABSENT and not (native_int(steps) is not None
                                    and params.MIN_STEPS <= native_int(steps) <= params.MAX_STEPS):
        bad.add("steps_num")
    guidance = body["guidance_scale"]
    guidance = params.DEFAULT_GUIDANCE if guidance is ABSENT else native_decimal(guidance)
    # At most two decimals (pydantic counts them on the normalised number: 7.500 is 7.5).
    if guidance is None or not guidance_in_range(guidance) or guidance.normalize().as_tuple().exponent < -2:
        bad.add("guidance_scale")
    return bad


def as_text(value):
    """What a form field holds for a JSON value: its text."""
    return value if isinstance(value, str) else json.dumps(value)


def form_int(text):
    """An integer as the form reads one: digits, a sign, maybe ".0"."""
    if not re.fullmatch(r"[+-]?[0-9]+(\.0*)?", text.strip()):
        return None
    return int(text.strip().split(".")[0])


def form_errors(data):
    bad = set()
    prompt = data.get("prompt", "").strip()
    if not prompt or len(prompt) > params.MAX_PROMPT_LENGTH:
        bad.add("prompt")
    if data.get("aspect_ratio") not in params.ASPECT_RATIOS:
        bad.add("aspect_ratio")
    seed = data.get("seed", "")
    if seed.strip() and not (form_int(seed) is not None and 0 <= form_int(seed) <= params.MAX_SEED):
        bad.add("seed")
    steps = form_int(data.get("steps_num", ""))
    if steps is None or not params.MIN_STEPS <= steps <= params.MAX_STEPS:
        bad.add("steps_num")
    guidance = decimal_of_text(data.get("guidance_scale", "").strip())
    # At most two decimals as written (7.500 is three).
    if guidance is None or not guidance_in_range(guidance) or guidance.as_tuple().exponent < -2:
        bad.add("guidance_scale")
    return bad


# What every accepted input must become --------------------------------------------------------

def assert_gateway_body(job_params, prompt, aspect_ratio, seed, steps, guidance):
    """The stored parameters are JSON, and their payload is exactly the gateway's body:
    the same values, with the seed document's types; the gateway's validator takes it."""
    assert json.loads(json.dumps(job_params, allow_nan=False)) == job_params
    assert re.fullmatch(r"[0-9]+(\.[0-9]*[1-9])?", job_params["guidance_scale"]), "stored as plain fixed-point text"
    body = params.fibo_payload(job_params)
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


@PROPERTY
@given(BODIES)
def test_the_gateways_validator_accepts_exactly_the_documented_parameters(body):
    sent = {name: value for name, value in body.items() if value is not ABSENT}
    bad = gateway_errors(body)
    event("refused" if bad else "accepted")
    if bad:
        with pytest.raises(HttpError) as refusal:
            validate_fibo(sent)
        assert refusal.value.status == 400
        assert refusal.value.body["message"].split(" ", 1)[0] in bad, "the message names a field that is wrong"
        return
    clean = validate_fibo(sent)
    assert clean["seed"] == body["seed"] if body["seed"] is not ABSENT else clean["seed"] in range(2**32)
    # As studio/api/gateway.py turns it into the job's parameters.
    job_params = params.fibo_params(clean["prompt"], clean["aspect_ratio"], clean["seed"], clean["steps_num"],
                                    str(clean["guidance_scale"]))
    assert_gateway_body(job_params, body["prompt"], sent.get("aspect_ratio", "1:1"), clean["seed"],
                        sent.get("steps_num", 30), sent.get("guidance_scale", 7.5))


@PROPERTY
@given(BODIES)
def test_the_native_api_accepts_exactly_the_documented_parameters(body):
    # KNOWN BUG, pinned in test_bad_input.py: an infinite integer crashes the schema.
    assume(not any(isinstance(body[name], float) and math.isinf(body[name]) for name in ("seed", "steps_num")))
    sent = {name: value for name, value in body.items() if value is not ABSENT}
    bad = native_errors(body)
    event("refused" if bad else "accepted")
    if bad:
        with pytest.raises(ValidationError) as refusal:
            FiboIn.model_validate(sent)
        named = {str(error["loc"][0]) if error["loc"] else "prompt" for error in refusal.value.errors()}
        assert named <= bad, "every error names a field that is wrong"
        return
    clean = FiboIn.model_validate(sent)
    # As jobs/api.py turns it into the job's parameters.
    job_params = params.fibo_params(clean.prompt.strip(), clean.aspect_ratio, clean.seed, clean.steps_num,
                                    clean.guidance_scale)
    seed = native_int(body["seed"]) if body["seed"] not in (ABSENT, None) else None
    guidance = native_decimal(sent["guidance_scale"]) if "guidance_scale" in sent else params.DEFAULT_GUIDANCE
    assert_gateway_body(job_params, body["prompt"].strip(), sent.get("aspect_ratio", "1:1"), seed,
                        native_int(sent.get("steps_num", 30)), guidance)


@PROPERTY
@given(bodies(complete=True))
def test_the_studio_form_accepts_exactly_the_documented_parameters(body):
    data = {name: as_text(value) for name, value in body.items() if value is not ABSENT}
    form = FiboForm(data)
    bad = form_errors(data)
    event("refused" if bad else "accepted")
    assert form.is_valid() == (not bad), (dict(form.errors), bad)
    if bad:
        assert set(form.errors) == bad, "each wrong field, and only those, shows its error"
        return
    seed = form_int(data["seed"]) if data.get("seed", "").strip() else None
    assert_gateway_body(form.job_params(), data["prompt"].strip(), data["aspect_ratio"], seed,
                        form_int(data["steps_num"]), decimal_of_text(data["guidance_scale"].strip()))


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
        job = start_fibo(membership, params.fibo_params("a lighthouse", seed=1))
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

"""Job parameters as the gateway's document defines them (seed: request parameters of
the FIBO and RMBG requests). Forms and APIs share these bounds, and `*_payload` turns
cleaned values into exactly the JSON body the gateway expects."""

from decimal import Decimal

ASPECT_RATIOS = ("1:1", "16:9", "4:3", "9:16")
DEFAULT_ASPECT_RATIO = "1:1"
DEFAULT_STEPS = 30
MIN_STEPS, MAX_STEPS = 1, 100
DEFAULT_GUIDANCE = Decimal("7.5")
MIN_GUIDANCE, MAX_GUIDANCE = Decimal("5"), Decimal("10")
MAX_SEED = 2**32 - 1
MAX_PROMPT_LENGTH = 2000
MAX_IMAGE_URL_LENGTH = 2000

# The gateway's model ids and submit paths, per studio model.
GATEWAY_MODELS = {
    "fibo": ("bria-fibo-bbq-preview", "/bria-fibo-bbq-preview/v1/bria-fibo-bbq-preview-request"),
    "rmbg": ("bria-rmbg-2-0-682", "/bria-rmbg-2-0-682/v1/bria-rmbg-2-0-request"),
}


def fibo_params(prompt, aspect_ratio=DEFAULT_ASPECT_RATIO, seed=None, steps_num=DEFAULT_STEPS,
                guidance_scale=DEFAULT_GUIDANCE):
    """The parameters stored on the job (JSON-safe), from already-validated values."""
    params = {
        "prompt": prompt,
        "aspect_ratio": aspect_ratio,
        "steps_num": int(steps_num),
        # Fixed-point text: "10", "7.5" (normalize() alone would write 10 as "1E+1").
        "guidance_scale": format(Decimal(guidance_scale).normalize(), "f"),
    }
    if seed is not None:
        params["seed"] = int(seed)
    return params


def fibo_payload(params):
    body = {
        "prompt": params["prompt"],
        "aspect_ratio": params["aspect_ratio"],
        "steps_num": params["steps_num"],
        # A JSON number: the gateway's guidance_scale is a number, not a string.
        "guidance_scale": float(Decimal(params["guidance_scale"])),
    }
    if params.get("seed") is not None:
        body["seed"] = params["seed"]
    return body


def rmbg_payload(image_url):
    return {"image_url": image_url}

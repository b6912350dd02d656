"""The studio page's two forms. Their fields read text; every rule beyond that is the
gateway contract's (jobs/contract.py), the same check and message the native API and
both gateway APIs give, so a form accepts exactly what the APIs accept, and the form a
remix fills in from any accepted job is valid."""

from django import forms

from jobs import contract
from jobs.addresses import FetchRefused, check_url


def _checked(check, value):
    """`value` as the contract's `check` leaves it, or its refusal as the field's error
    ("Must be between 1 and 100.")."""
    try:
        return check(value)
    except contract.Invalid as exc:
        raise forms.ValidationError(f"{exc.rule[0].upper()}{exc.rule[1:]}.") from None


def _bounds(low, high, step=1):
    return forms.NumberInput(attrs={"min": low, "max": high, "step": step})


class FiboForm(forms.Form):
    prompt = forms.CharField(
        strip=True,
        widget=forms.Textarea(attrs={"rows": 3, "maxlength": contract.MAX_PROMPT_LENGTH,
                                     "placeholder": "A magnificent hot air balloon festival at sunrise…"}),
    )
    aspect_ratio = forms.ChoiceField(  # the default first
        choices=[(r, r) for r in sorted(contract.ASPECT_RATIOS, key=lambda r: r != contract.DEFAULT_ASPECT_RATIO)],
        initial=contract.DEFAULT_ASPECT_RATIO)
    seed = forms.IntegerField(required=False, widget=_bounds(contract.MIN_SEED, contract.MAX_SEED),
                              help_text="Leave empty for a random seed.")
    steps_num = forms.IntegerField(label="Steps", initial=contract.DEFAULT_STEPS,
                                   widget=_bounds(contract.MIN_STEPS, contract.MAX_STEPS))
    guidance_scale = forms.DecimalField(initial=contract.DEFAULT_GUIDANCE,
                                        widget=_bounds(contract.MIN_GUIDANCE, contract.MAX_GUIDANCE,
                                                       contract.GUIDANCE_STEP))

    def clean_prompt(self):
        return _checked(contract.prompt, self.cleaned_data["prompt"])

    def clean_seed(self):
        return _checked(contract.seed, self.cleaned_data["seed"])

    def clean_steps_num(self):
        return _checked(contract.steps_num, self.cleaned_data["steps_num"])

    def clean_guidance_scale(self):
        return _checked(contract.guidance_scale, self.cleaned_data["guidance_scale"])

    def job_params(self):
        data = self.cleaned_data
        return contract.fibo_params(data["prompt"], data["aspect_ratio"], data["seed"], data["steps_num"],
                                    data["guidance_scale"])


class RmbgForm(forms.Form):
    image = forms.ImageField(required=False, help_text="Choose a file or drop one on this form. PNG, JPEG or WebP, "
                                                       "up to 20 MB.")
    image_url = forms.CharField(
        required=False, label="or an image URL",
        widget=forms.URLInput(attrs={"placeholder": "https://example.com/photo.jpg",
                                     "maxlength": contract.MAX_IMAGE_URL_LENGTH}),
    )

    def clean_image_url(self):
        """The contract's URL, and one the studio can already tell it could fetch: its
        scheme, a public address, a host that resolves (jobs/addresses.py)."""
        url = self.cleaned_data["image_url"]
        if not url:
            return url
        _checked(contract.image_url, url)
        try:
            return check_url(url)
        except FetchRefused as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        if bool(data.get("image")) == bool(data.get("image_url")):
            raise forms.ValidationError("Upload an image or paste an image URL (one of the two).")
        return data

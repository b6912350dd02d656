from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator, URLValidator

from jobs import params


class FiboForm(forms.Form):
    prompt = forms.CharField(
        max_length=params.MAX_PROMPT_LENGTH, strip=True,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "A magnificent hot air balloon festival at sunrise…"}),
    )
    aspect_ratio = forms.ChoiceField(choices=[(r, r) for r in params.ASPECT_RATIOS], initial=params.DEFAULT_ASPECT_RATIO)
    seed = forms.IntegerField(required=False, min_value=0, max_value=params.MAX_SEED,
                              help_text="Leave empty for a random seed.")
    steps_num = forms.IntegerField(label="Steps", initial=params.DEFAULT_STEPS,
                                   min_value=params.MIN_STEPS, max_value=params.MAX_STEPS)
    guidance_scale = forms.DecimalField(
        initial=params.DEFAULT_GUIDANCE, max_digits=4, decimal_places=2,
        validators=[MinValueValidator(params.MIN_GUIDANCE), MaxValueValidator(params.MAX_GUIDANCE)],
        widget=forms.NumberInput(attrs={"step": "0.1"}),
    )

    def job_params(self):
        data = self.cleaned_data
        return params.fibo_params(
            data["prompt"], data["aspect_ratio"], data["seed"],
            data["steps_num"] if data["steps_num"] is not None else params.DEFAULT_STEPS,
            data["guidance_scale"] if data["guidance_scale"] is not None else params.DEFAULT_GUIDANCE,
        )


class RmbgForm(forms.Form):
    image = forms.ImageField(required=False, help_text="Choose a file or drop one on this form. PNG, JPEG or WebP, "
                                                       "up to 20 MB.")
    image_url = forms.CharField(
        required=False, max_length=params.MAX_IMAGE_URL_LENGTH, label="or an image URL",
        validators=[URLValidator(schemes=["http", "https"])],
        widget=forms.URLInput(attrs={"placeholder": "https://example.com/photo.jpg"}),
    )

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        if bool(data.get("image")) == bool(data.get("image_url")):
            raise forms.ValidationError("Upload an image or paste an image URL (one of the two).")
        return data

from django import forms
from django.contrib.auth.forms import UserCreationForm
from django.contrib.auth.models import User


class SignupForm(UserCreationForm):
    email = forms.EmailField()
    team_name = forms.CharField(max_length=100, required=False, help_text="Defaults to your username.")

    class Meta:
        model = User
        fields = ("username", "email")

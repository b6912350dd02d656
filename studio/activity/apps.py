from django.apps import AppConfig


class ActivityConfig(AppConfig):
    name = "studio.activity"
    label = "activity"

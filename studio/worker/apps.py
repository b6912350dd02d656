from django.apps import AppConfig


class WorkerConfig(AppConfig):
    name = "studio.worker"
    label = "worker"
    verbose_name = "Task worker"

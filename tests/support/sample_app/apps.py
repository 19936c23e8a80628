from django.apps import AppConfig


class SampleAppConfig(AppConfig):
    name = "tests.support.sample_app"
    label = "sample_app"

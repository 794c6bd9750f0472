import pytest


@pytest.fixture(autouse=True)
def static_files_by_source_name(settings) -> None:
    """The live test server finds static files by their source names, as
    `manage.py runserver` does; `tests/test_serve.py` checks the hashed names that
    WhiteNoise serves under `make run`."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }

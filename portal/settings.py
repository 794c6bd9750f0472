"""Settings, all from environment variables (see .env.example)."""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF, UNSAFE_INLINE
from kombu import Queue

from portal import secret
from portal.env import ConfigError, envbool, envint, envlist

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.getenv("PORTAL_DATA_DIR", BASE_DIR / "data"))

DEVELOPMENT_SECRET_KEY = "development-only-secret-key-do-not-use-in-production"
# Off unless asked for (`make dev` asks): a server people use never shows Django's
# technical pages.
DEBUG = envbool("DJANGO_DEBUG", "False")
# Without DJANGO_SECRET_KEY, a server makes its own once, in the data folder. Several
# machines sharing one database must be given the same key.
SECRET_KEY = os.getenv("DJANGO_SECRET_KEY") or (
    DEVELOPMENT_SECRET_KEY if DEBUG else secret.load_or_create(DATA_DIR / "secret_key")
)
if not DEBUG and SECRET_KEY == DEVELOPMENT_SECRET_KEY:
    raise ConfigError("DJANGO_SECRET_KEY is the development key: set a long random value")

ALLOWED_HOSTS = envlist("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = envlist("DJANGO_CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "ninja",
    "axes",
    "portal",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Serves the collected static files in production (no separate file server needed).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: it turns a locked-out sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.context.shell",
            ],
            "builtins": ["template_partials.templatetags.partials"],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.getenv("DATABASE_URL", f"sqlite:///{DATA_DIR / 'portal.sqlite3'}"),
        conn_max_age=envint("DATABASE_CONN_MAX_AGE", "0"),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # WAL lets the web process read while the worker writes; IMMEDIATE transactions
    # and a busy timeout make writers queue up instead of failing with "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# django-axes first: it refuses a locked-out sign-in before the password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "portal:home"
LOGOUT_REDIRECT_URL = "login"
SIGNUP_ENABLED = envbool("PORTAL_SIGNUP_ENABLED", "True")

# Sign-in throttling (django-axes, attempts kept in the database so every web process
# sees them): this many failures for one username from one address lock that pair out
# for the cool-off; a success clears the count. Also guards the admin's sign-in.
AXES_FAILURE_LIMIT = envint("PORTAL_LOGIN_FAILURE_LIMIT", "5")
AXES_COOLOFF_TIME = timedelta(minutes=envint("PORTAL_LOGIN_COOLOFF_MINUTES", "15"))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False

# API token guessing: after this many requests with a wrong token from one address,
# token requests from it get 429 for the cool-off. Counted in the cache below, which is
# per process: with N web processes an address gets at most N times the limit.
PORTAL_API_TOKEN_FAILURE_LIMIT = envint("PORTAL_API_TOKEN_FAILURE_LIMIT", "10")
PORTAL_API_TOKEN_COOLOFF_SECONDS = envint("PORTAL_API_TOKEN_COOLOFF_SECONDS", "900")
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "staticfiles"

# Security headers on every response (SecurityMiddleware, XFrameOptionsMiddleware and
# django-csp). Scripts only from our own static files: no inline scripts, no eval.
# Style attributes are allowed (progress bars set their width); style elements only
# from our files. Browsers without style-src-elem/-attr fall back to style-src.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, UNSAFE_INLINE],
        "style-src-elem": [SELF],
        "style-src-attr": [UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# Served over HTTPS (behind a proxy that ends TLS): secure cookies, HSTS, and plain HTTP
# redirected. `make run` serves plain HTTP on this machine, so it is off unless set.
if envbool("PORTAL_HTTPS", "False"):
    SECURE_SSL_REDIRECT = envbool("DJANGO_SECURE_SSL_REDIRECT", "True")
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = envint("DJANGO_SECURE_HSTS_SECONDS", "31536000")
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    CONTENT_SECURITY_POLICY["DIRECTIVES"]["upgrade-insecure-requests"] = True
if not DEBUG:
    # File names carry a hash of their content, so browsers may cache them for good
    # (`manage.py serve` and the tests collect them first).
    STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }

# Base embedding models besides the bundled default, as "id=hub-name-or-path,id2=...".
PORTAL_EMBEDDING_MODELS = dict(
    item.split("=", 1) for item in envlist("PORTAL_EMBEDDING_MODELS", "") if "=" in item
)
# The ONNX Runtime exports of the bundled model, made by the first process that needs one
# (a cache: deleting it costs a few seconds of export, nothing else).
PORTAL_ONNX_CACHE_DIR = Path(os.getenv("PORTAL_ONNX_CACHE_DIR", DATA_DIR / "onnx"))

# Predictions: texts per request, and characters per text (uploads use the same limit).
PORTAL_MAX_PREDICT_TEXTS = envint("PORTAL_MAX_PREDICT_TEXTS", "128")
PORTAL_MAX_TEXT_LENGTH = envint("PORTAL_MAX_TEXT_LENGTH", "100000")

# Uploads: files above the cap are refused before they are read; from this many rows
# on, an import runs as a background job with a progress bar.
PORTAL_MAX_UPLOAD_BYTES = envint("PORTAL_MAX_UPLOAD_BYTES", str(50 * 1024 * 1024))
PORTAL_BACKGROUND_IMPORT_ROWS = envint("PORTAL_BACKGROUND_IMPORT_ROWS", "10000")
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

# Celery. Time limits must stay ordered: soft < hard < broker visibility timeout, so a
# task is stopped (and its job marked failed) before Redis hands it to another worker.
REDIS_URL = os.getenv("REDIS_URL", "redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = REDIS_URL
CELERY_TASK_SOFT_TIME_LIMIT = envint("CELERY_TASK_SOFT_TIME_LIMIT", "1800")
CELERY_TASK_TIME_LIMIT = envint("CELERY_TASK_TIME_LIMIT", "1860")
CELERY_BROKER_VISIBILITY_TIMEOUT = envint("CELERY_BROKER_VISIBILITY_TIMEOUT", "1920")
# A job still queued or running this long after it started has lost its worker.
PORTAL_REAPER_DEADLINE = envint("PORTAL_REAPER_DEADLINE", "2100")
# Training writes a heartbeat this often; the reaper fails a run whose heartbeat is
# older than the deadline (its worker is gone).
PORTAL_HEARTBEAT_SECONDS = envint("PORTAL_HEARTBEAT_SECONDS", "5")
PORTAL_HEARTBEAT_DEADLINE = envint("PORTAL_HEARTBEAT_DEADLINE", "120")
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": CELERY_BROKER_VISIBILITY_TIMEOUT,
    "socket_connect_timeout": 2,
    "socket_timeout": 5,
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A worker waits out a Redis outage of any length instead of exiting after 100 retries.
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Two queues, so that a click never waits behind bulk work: "interactive" for the jobs
# someone is waiting for (imports, versions, training, evaluation, batch prediction) and
# "bulk" for embedding uploads ahead of time. A worker consumes both unless started with
# -Q; `manage.py serve` gives each queue its own worker (docs/SCALING.md).
CELERY_TASK_QUEUES = [Queue(name, routing_key=name) for name in ("interactive", "bulk")]
CELERY_TASK_DEFAULT_QUEUE = "interactive"
CELERY_TASK_ROUTES = {"portal.tasks.embed_*": {"queue": "bulk"}}
# Embedding chunks of one app queued or running at once: the bulk queue takes turns
# between apps, so a large upload delays another app's small one by a chunk or two. Set
# it to the number of bulk worker processes for one large upload to use them all.
PORTAL_EMBED_CHUNKS_PER_APP = envint("PORTAL_EMBED_CHUNKS_PER_APP", "2")
CELERY_BEAT_SCHEDULE = {
    "heartbeat": {"task": "portal.tasks.heartbeat", "schedule": 30.0},
    "reap": {"task": "portal.tasks.reap_stale_jobs", "schedule": 60.0},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.getenv("LOG_LEVEL", "INFO")},
}

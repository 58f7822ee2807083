"""A minimal Django project calling posterflow. Every setting that matters comes from the
environment: POSTERFLOW_URL, POSTERFLOW_API_KEY, POSTERFLOW_TEMPLATE_ID and (optionally)
POSTERFLOW_WEBHOOK_SECRET (else fetched once from GET /api/webhook-secret)."""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-not-for-production")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")

INSTALLED_APPS = ["django.contrib.contenttypes", "testimonials"]
MIDDLEWARE = ["django.middleware.common.CommonMiddleware", "django.middleware.csrf.CsrfViewMiddleware"]
ROOT_URLCONF = "posterflow_example.urls"
WSGI_APPLICATION = "posterflow_example.wsgi.application"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3",
                         "NAME": os.environ.get("DJANGO_DB", str(BASE_DIR / "db.sqlite3"))}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"

POSTERFLOW_URL = os.environ.get("POSTERFLOW_URL", "http://127.0.0.1:8000")
POSTERFLOW_API_KEY = os.environ.get("POSTERFLOW_API_KEY") or None
POSTERFLOW_TEMPLATE_ID = os.environ.get("POSTERFLOW_TEMPLATE_ID", "testimonial_latest")
POSTERFLOW_WEBHOOK_SECRET = os.environ.get("POSTERFLOW_WEBHOOK_SECRET") or None
# Where posterflow should POST completion webhooks (this site's /webhooks/posterflow/).
POSTERFLOW_WEBHOOK_URL = os.environ.get("POSTERFLOW_WEBHOOK_URL") or None

"""Settings for the test suite: the reference project's, with a fast retry schedule and loopback
destinations allowed. Worker processes started by the tests use this module too; a test passes
extra `WEBHOOKS` keys to its own worker through WEBHOOKS_OVERRIDES (JSON)."""

import json
import os

# The reference settings refuse to start without a key unless DEBUG is on; tests run with
# DEBUG off, as production does. Set before the import below; worker processes inherit it.
os.environ.setdefault("DJANGO_SECRET_KEY", "tests-only-not-a-secret-" + "x" * 40)

from webhooks_project.settings import *
from webhooks_project.settings import WEBHOOKS

WEBHOOKS = {
    **WEBHOOKS,
    "ALLOW_PRIVATE_NETWORKS": True,
    "ALLOW_HTTP": True,
    "RETRY_SCHEDULE": [0, 0.2, 0.2, 0.2, 0.2],
    "RETRY_JITTER": 0.1,
    "CONNECT_TIMEOUT": 2,
    # A down-converter's output that misses its schema fails the test that published it.
    "DOWNGRADE_ERRORS": "raise",
    "TIMEOUT": 3,
    **json.loads(os.environ.get("WEBHOOKS_OVERRIDES", "{}")),
}

# The reference project's demo event type (`order.created`, declared in code) stays out of the
# suite, whose tests publish `order.created` with data of every shape and declare their own
# types; tests/test_contracts_reference.py migrates the reference project itself.
INSTALLED_APPS = [app for app in INSTALLED_APPS if app != "webhooks_project"]

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# A test's worker may shrink broker options (e.g. a visibility timeout of a few seconds) through
# CELERY_TRANSPORT_OVERRIDES (JSON), merged over the reference project's options.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    **CELERY_BROKER_TRANSPORT_OPTIONS,
    **json.loads(os.environ.get("CELERY_TRANSPORT_OVERRIDES", "{}")),
}

# Throttle counters in this process's memory, emptied before every test (tests/conftest.py):
# the reference settings would put them on the broker's Redis, which tests start on their own.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# A second database, for the tests of a host's routers (tests/test_routing.py): a replica that
# never catches up (the schema, none of the rows), or where a router puts both apps. Created
# only when a test asks for it.
DATABASES["replica"] = {
    **DATABASES["default"],
    "TEST": {
        "NAME": (
            str(BASE_DIR / "var" / "test_replica.sqlite3")
            if DATABASES["default"]["ENGINE"].endswith("sqlite3")
            else f"test_{DATABASES['default']['NAME']}_replica"
        )
    },
}

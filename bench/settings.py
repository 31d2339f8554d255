"""Settings for the bench's own processes: the reference project's, with loopback destinations
allowed (the receivers run on 127.0.0.1). Nothing else differs from production defaults, so the
figures are those of the shipped configuration."""

import json
import os

# The reference settings refuse to start without a key unless DEBUG is on (the bench runs with
# DEBUG off, as production does). Set before the import below; its processes inherit it.
os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-not-a-secret-" + "x" * 40)
# Whatever the shell exported: with DEBUG on, Django wraps every cursor to record its queries,
# which adds to each statement's cost and to nothing in the yardsticks.
os.environ["DJANGO_DEBUG"] = "0"

from webhooks_project.settings import *  # noqa: F403
from webhooks_project.settings import WEBHOOKS

WEBHOOKS = {
    **WEBHOOKS,
    "ALLOW_PRIVATE_NETWORKS": True,
    "ALLOW_HTTP": True,
    **json.loads(os.environ.get("WEBHOOKS_OVERRIDES", "{}")),
}

# The bench posts to the API in-process with DRF's APIClient (host "testserver").
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]

"""Settings for the bench's own processes: the reference project's, with loopback destinations
allowed (the receivers run on 127.0.0.1). Nothing else differs from production defaults, so the
figures are those of the shipped configuration."""

import json
import os

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

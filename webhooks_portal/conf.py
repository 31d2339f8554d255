"""The portal's keys of the `WEBHOOKS` settings dict, read as `webhook_settings.KEY`.

Same dict and same mechanism as the shared keys (`webhooks_core/conf.py`) and the
pipeline's (`deliveries/conf.py`): one user-facing setting, each app owning and documenting its
own keys (every one is in docs/settings.md). Checked by `webhooks_portal.checks`.
"""

from __future__ import annotations

from typing import Any

from webhooks_core.conf import WebhookSettings

DEFAULTS: dict[str, Any] = {
    # Seconds a portal link made by POST /api/tenants/{key}/portal-link/ can be opened; keep it
    # short: the link is a bearer credential until then.
    "PORTAL_LINK_MAX_AGE": 3600,
    # Seconds the portal session opened by a link lasts (the tenant stays signed in to the
    # portal, not to the host's site).
    "PORTAL_SESSION_AGE": 43200,
    # Who may show the portal in a frame: the sources of the `frame-ancestors` directive of the
    # portal's Content-Security-Policy, e.g. ["'self'", "https://app.example.com"]. ["'none'"]
    # forbids framing.
    "PORTAL_FRAME_ANCESTORS": ["'self'"],
}

webhook_settings = WebhookSettings(DEFAULTS)

"""The `WEBHOOKS` settings dict: the one user-facing setting, read through settings objects.

`WEBHOOKS` is a single dict in the host's settings. Each app owns its keys and reads them
through a `WebhookSettings` object built on this module's mechanism: this app the registry's
keys (below), the deliveries app the pipeline's (`deliveries/conf.py`). Values are resolved on
access and every object's cache is dropped on `setting_changed`, so
`override_settings(WEBHOOKS=...)` works in tests and nothing is frozen at import time. Nothing
else looks at `settings.WEBHOOKS`; a key no app declares is an error (`webhooks.E006`).
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

# The registry's keys: which destinations a subscription may have, secret rotation, and the
# API's pages (subscriptions.api serves both apps' views).
DEFAULTS: dict[str, Any] = {
    # Items per page of every API list of both apps (`?limit=` chooses another size), and the
    # largest `limit` a client may ask for: a bigger one gets this many.
    "PAGE_SIZE": 50,
    "MAX_PAGE_SIZE": 1000,
    # Allow destinations on loopback, private and other non-global networks (tests, demos only).
    "ALLOW_PRIVATE_NETWORKS": False,
    # Allow plain http:// destinations (tests, demos only).
    "ALLOW_HTTP": False,
    # Seconds an old secret keeps signing beside the new one after a rotation.
    "SECRET_ROTATION_OVERLAP": 86400,
}


class WebhookSettings:
    """Attribute access to one app's keys of `settings.WEBHOOKS`, falling back to `defaults`.

    Raises AttributeError for a key that is not in `defaults`, and ImproperlyConfigured if
    `settings.WEBHOOKS` is not a dict.
    """

    # Every object made, so that one `setting_changed` receiver resets them all and the checks
    # know every declared key.
    instances: ClassVar[list[WebhookSettings]] = []

    def __init__(self, defaults: dict[str, Any]) -> None:
        self.defaults = defaults
        self._cache: dict[str, Any] = {}
        WebhookSettings.instances.append(self)

    @classmethod
    def known_keys(cls) -> set[str]:
        """The keys declared by every app loaded so far."""
        return {key for instance in cls.instances for key in instance.defaults}

    @property
    def user_settings(self) -> dict[str, Any]:
        value = getattr(settings, "WEBHOOKS", None) or {}
        if not isinstance(value, dict):
            raise ImproperlyConfigured("settings.WEBHOOKS must be a dict.")
        return value

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in self.defaults:
            raise AttributeError(f"Unknown webhooks setting: {name!r}")
        if name not in self._cache:
            self._cache[name] = self.user_settings.get(name, self.defaults[name])
        return self._cache[name]

    def reload(self) -> None:
        self._cache.clear()


webhook_settings = WebhookSettings(DEFAULTS)


def _reload(*, setting: str, **kwargs: Any) -> None:
    if setting in {"WEBHOOKS", "CELERY_BROKER_TRANSPORT_OPTIONS"}:
        for instance in WebhookSettings.instances:
            instance.reload()


setting_changed.connect(_reload, dispatch_uid="webhooks-settings-reload")

"""The `WEBHOOKS` settings dict: the one user-facing setting, read through settings objects.

`WEBHOOKS` is a single dict in the host's settings. Each app owns its keys and reads them
through a `WebhookSettings` object built on this module's mechanism: this app the registry's
keys (below), the deliveries app the pipeline's (`deliveries/conf.py`), the portal its own
(`webhooks_portal/conf.py`). Values are resolved on access and every object's cache is dropped on
`setting_changed`, so `override_settings(WEBHOOKS=...)` works in tests and nothing is frozen at
import time. Nothing else looks at `settings.WEBHOOKS`; a key no app declares is an error
(`webhooks.E006`).
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

# The shared keys, and the registry's: which destinations a subscription may have, secret
# rotation, the API's pages and request budgets (webhooks_core.api serves every app's views),
# tenants.
DEFAULTS: dict[str, Any] = {
    # Items per page of every API list of both apps (`?limit=` chooses another size), and the
    # largest `limit` a client may ask for: a bigger one gets this many.
    "PAGE_SIZE": 50,
    "MAX_PAGE_SIZE": 1000,
    # Allow destinations on loopback, private and other non-global networks (tests, demos only).
    "ALLOW_PRIVATE_NETWORKS": False,
    # Allow plain http:// destinations (tests, demos only).
    "ALLOW_HTTP": False,
    # Seconds an old secret keeps signing beside the new one after a rotation (the default of
    # `rotate-secret`'s `overlap`).
    "SECRET_ROTATION_OVERLAP": 86400,
    # Fernet keys (urlsafe base64 of 32 bytes) that encrypt write-only values at rest: signing
    # secrets and keys, custom header values, OAuth2 client secrets, mTLS keys. The first
    # encrypts, every one decrypts (rotation: put a new key first, run
    # `manage.py webhooks_rotate_encryption_key`, then drop the old one). A list, or one
    # comma-separated string. Empty: a key derived from SECRET_KEY, which `check --deploy`
    # reports (webhooks.E010). docs/security.md.
    "ENCRYPTION_KEYS": [],
    # Tenants (docs/tenants.md). The key of the tenant that owns whatever is created or
    # published without naming one: single-tenant projects live in it without knowing.
    "DEFAULT_TENANT": "default",
    # Dotted path to `callable(request) -> str | None` giving the tenant key of a request's
    # user (None: no tenant). Model permissions, not this, grant access across tenants. The
    # default maps a user in exactly one group "tenant:<key>" to <key>, and anyone else to
    # None: logging in grants nothing (closed by default).
    "TENANT_RESOLVER": "webhooks_core.tenancy.tenant_from_groups",
    # Most subscriptions one tenant may have, unless its Tenant row says otherwise; None for
    # no limit. Creating one more answers 403 and creates nothing.
    "TENANT_MAX_SUBSCRIPTIONS": 1000,
    # Most deliveries of one tenant in flight at once (all its endpoints together), unless its
    # Tenant row says otherwise; None for no cap. The default tenant is capped too. Keep it
    # well under the worker's concurrency so that one tenant's hanging endpoints leave slots
    # for the others. Counted in REDIS_URL, like MAX_IN_FLIGHT. (A registry key: the Tenant
    # row it defaults lives here.)
    "TENANT_MAX_IN_FLIGHT": 20,
    # Most events per second to one subscription, for endpoints whose own `max_rate` and whose
    # tenant's `max_rate` are empty; None for no rate. Enforced across all workers in REDIS_URL
    # (GCRA, a burst of at most one second's worth); over it a delivery waits for its turn
    # without spending an attempt. (A registry key: the Tenant row it defaults lives here.)
    "MAX_RATE": None,
    # Request budgets of the API (DRF throttles, webhooks_core/throttling.py), each applied per
    # user and per tenant: "number/second|minute|hour|day", None for no limit. Keys given here
    # replace the defaults one by one. `failed_login` bounds failed Basic/Token authentications
    # per client address and per user name (webhooks_core/authentication.py).
    # Which `X-Forwarded-For` entry is the client's address for the failed-login bound and
    # anonymous budgets (webhooks_core/clientaddr.py): 0 ignores the header (REMOTE_ADDR), N
    # trusts N proxies of yours, a list of CIDRs trusts proxies in those networks. Anything
    # else would let a client choose its own address.
    "TRUSTED_PROXIES": 0,
    # Event contracts (docs/contracts.md). What a down-converter whose output does not match
    # its version's schema does to publish(): "raise" (ContractError; set it in your tests and
    # development) or "log" (an error is logged and the output sent as it is).
    "DOWNGRADE_ERRORS": "log",
    # Where `manage.py webhooks_contracts --write` records the published schemas and `--check`
    # reads them: a path relative to the working directory, committed in the host's repository.
    "CONTRACTS_FILE": "webhook_contracts.json",
    "THROTTLE_RATES": {
        "publish": "200/second",
        "test": "30/minute",
        "replay": "60/hour",
        "retry": "600/hour",
        "bulk_retry": "30/hour",
        "create": "200/hour",
        "simulate": "60/minute",
        "failed_login": "10/minute",
    },
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

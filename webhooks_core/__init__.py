"""The shared core of the webhooks apps: what the registry (`subscriptions`), the pipeline
(`deliveries`) and the portal (`webhooks_portal`) all build on, and nothing of their own.

- `conf`: the `WEBHOOKS` settings dict, read through settings objects;
- `access`, `tenancy`: who may see and do what, and which tenant a request belongs to;
- `api`, `throttling`, `authentication`, `clientaddr`: what every API view shares (parsing,
  errors, pages, request budgets, bounded logins);
- `netguard`, `lookups`: which destinations a webhook may be sent to (the SSRF guard);
- `text`, `wire`: text made safe to store, datetimes on the wire;
- `encryption`, `fields`: write-only values encrypted at rest;
- `keyset`, `search`, `ids`: lists that stay flat as history grows.

A plain package, not a Django app: it has no models, templates or migrations, so a host lists
only the apps in `INSTALLED_APPS`. It imports none of the apps (tests/test_layout.py).
"""

"""OpenAPI descriptions of our DRF authentication classes (drf-spectacular extensions): the
bounded ones are Basic and Token authentication on the wire. Imported in `apps.ready()`."""

from __future__ import annotations

from drf_spectacular.authentication import BasicScheme, TokenScheme


class BoundedBasicScheme(BasicScheme):
    target_class = "webhooks_core.authentication.BoundedBasicAuthentication"


class BoundedTokenScheme(TokenScheme):
    target_class = "webhooks_core.authentication.BoundedTokenAuthentication"

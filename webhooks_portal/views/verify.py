"""How to verify signatures, with the tenant's own example and the receiver toolkit."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_http_methods

from ..verification import example_code, example_for
from .base import page, portal_view


@portal_view
@require_http_methods(["GET", "HEAD"])
def verify(request: HttpRequest, tenant: str) -> HttpResponse:
    example = example_for(tenant)
    return page(
        request,
        "webhooks_portal/verify.html",
        {"example": example, "code": example_code(example), "nav": "verify"},
    )

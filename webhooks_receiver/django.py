"""Django views that accept only verified Standard Webhooks deliveries.

    from webhooks_receiver.django import webhook_view

    @webhook_view(secret=lambda request: settings.ORDERS_WEBHOOK_SECRET)
    def orders_hook(request, event):
        handle(event.type, event.data)  # event.id is stable across retries

Malformed deliveries get 400, a bad signature or a stale timestamp 401; the view is not called.
CSRF does not apply (the signature is the authentication). Only POST is accepted.

Optional deduplication (`dedupe=True`) remembers each `webhook-id` in a Django cache: a
delivery seen and handled before answers 200 without calling the view; one still being handled
by another request answers 409, which senders retry. A view that raises or answers other than
2xx forgets the id, so the sender's retry is handled again. Use a cache shared by all your
processes (Redis, Memcached, database); the default local-memory cache is per process.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Callable
from typing import Any

from django.core.cache import caches
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from . import DEFAULT_TOLERANCE, Secrets, WebhookError, WebhookEvent, verify_event

__all__ = ["DEFAULT_DEDUPE_TIMEOUT", "WebhookView", "webhook_view"]

logger = logging.getLogger("webhooks_receiver")

#: Seconds a handled `webhook-id` is remembered: longer than a sender's whole retry schedule
#: (about 28 hours with the default schedule), so a late retry is still recognised.
DEFAULT_DEDUPE_TIMEOUT = 3 * 24 * 3600
#: Seconds an id stays claimed while a request handles it; if the process dies mid-way the
#: claim lapses and the sender's next retry is handled.
DEFAULT_PROCESSING_TIMEOUT = 600

_PROCESSING = "processing"
_DONE = "done"

SecretSource = Secrets | Callable[[HttpRequest], Secrets]
Handler = Callable[..., HttpResponse | None]


def webhook_view(
    secret: SecretSource,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    dedupe: bool = False,
    dedupe_timeout: int = DEFAULT_DEDUPE_TIMEOUT,
    cache_alias: str = "default",
) -> Callable[[Handler], Callable[..., HttpResponse]]:
    """Decorate `view(request, event, *args, **kwargs)` to receive only verified deliveries.

    `secret` is a `whsec_...` string, several of them (during a rotation), or a callable taking
    the request and returning those (read per request, so settings are not frozen at import).
    A view returning None answers 204.
    """

    def decorator(view: Handler) -> Callable[..., HttpResponse]:
        @csrf_exempt
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            return _receive(
                request,
                secret,
                lambda event: view(request, event, *args, **kwargs),
                tolerance=tolerance,
                dedupe=dedupe,
                dedupe_timeout=dedupe_timeout,
                cache_alias=cache_alias,
            )

        return wrapper

    return decorator


@method_decorator(csrf_exempt, name="dispatch")
class WebhookView(View):
    """Base view: set `secret` (or override `get_secret`) and implement `handle`."""

    http_method_names = ["post", "options"]
    secret: Secrets | None = None
    tolerance: float = DEFAULT_TOLERANCE
    dedupe: bool = False
    dedupe_timeout: int = DEFAULT_DEDUPE_TIMEOUT
    cache_alias: str = "default"

    def get_secret(self, request: HttpRequest) -> Secrets:
        if self.secret is None:
            raise NotImplementedError("Set WebhookView.secret or override get_secret().")
        return self.secret

    def handle(self, request: HttpRequest, event: WebhookEvent) -> HttpResponse | None:
        raise NotImplementedError("WebhookView subclasses implement handle(request, event).")

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return _receive(
            request,
            self.get_secret,
            lambda event: self.handle(request, event),
            tolerance=self.tolerance,
            dedupe=self.dedupe,
            dedupe_timeout=self.dedupe_timeout,
            cache_alias=self.cache_alias,
        )


def _receive(
    request: HttpRequest,
    secret: SecretSource,
    handle: Callable[[WebhookEvent], HttpResponse | None],
    *,
    tolerance: float,
    dedupe: bool,
    dedupe_timeout: int,
    cache_alias: str,
) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    secrets = secret(request) if callable(secret) else secret
    try:
        event = verify_event(secrets, request.body, request.headers, tolerance)
    except WebhookError as exc:
        logger.warning("webhook refused (%s): %s", exc.status, exc)
        return HttpResponse(str(exc), status=exc.status, content_type="text/plain")
    if not dedupe:
        return _call(handle, event)

    cache = caches[cache_alias]
    key = "webhooks-receiver:" + hashlib.sha256(event.id.encode("utf-8")).hexdigest()
    if not cache.add(key, _PROCESSING, timeout=DEFAULT_PROCESSING_TIMEOUT):
        if cache.get(key) == _DONE:
            return HttpResponse("Already handled.", status=200, content_type="text/plain")
        return HttpResponse("Being handled.", status=409, content_type="text/plain")
    try:
        response = _call(handle, event)
    except BaseException:
        cache.delete(key)
        raise
    if 200 <= response.status_code < 300:
        cache.set(key, _DONE, timeout=dedupe_timeout)
    else:
        cache.delete(key)
    return response


def _call(
    handle: Callable[[WebhookEvent], HttpResponse | None], event: WebhookEvent
) -> HttpResponse:
    response = handle(event)
    return HttpResponse(status=204) if response is None else response

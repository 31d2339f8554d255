"""What every API view of both apps shares, so that they behave the same inside any host project,
whatever its `REST_FRAMEWORK` settings: body parsing, page caps and JSON errors.

A host project's DRF defaults are DRF's own unless it says otherwise: no pagination (a list
answers every row), non-strict JSON configurable, and an unexpected exception becomes Django's
HTML 500 page. The views here set their own parser, paginator and exception handler instead:

- `JSONParser`: strict JSON (no NaN or Infinity, RFC 8259 §6) and a nesting limit, so that a
  body nested 10,000 levels deep is a 400, not a `RecursionError` and a 500.
- `Pagination`: limit/offset pages of `WEBHOOKS["PAGE_SIZE"]`, never more than
  `WEBHOOKS["MAX_PAGE_SIZE"]` rows whatever `?limit=` asks. History lists (events,
  deliveries) set `webhooks_core.keyset.CursorPagination` instead, with the same limits.
- `exception_handler`: the host's handler (DRF's by default) first; anything it leaves
  unhandled is logged with its traceback and answered as a JSON 500.
- `AutoSchema`: drf-spectacular's inspector, so that the OpenAPI schema (webhooks_core/apidocs.py)
  works in a host whose `DEFAULT_SCHEMA_CLASS` is DRF's own; `extend_schema` annotates view
  methods on that same base.

`server_error` is a `handler500` for the project's root URLconf that answers API requests in
JSON as well (errors raised outside a view, e.g. in a middleware).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar, cast

from django.core.signals import got_request_exception
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import Resolver404, resolve
from django.views import defaults
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import extend_schema as spectacular_extend_schema
from rest_framework import parsers, views
from rest_framework.exceptions import ParseError
from rest_framework.pagination import BasePagination, LimitOffsetPagination
from rest_framework.parsers import BaseParser
from rest_framework.response import Response
from rest_framework.schemas.inspectors import ViewInspector
from rest_framework.settings import api_settings
from rest_framework.views import APIView, set_rollback

from .conf import webhook_settings
from .throttling import refund_refused

logger = logging.getLogger("webhooks_core.api")

# Deepest JSON request body accepted at all, in containers within containers. Above every
# field's own limit (event data: WEBHOOKS["MAX_PAYLOAD_DEPTH"], at most 128, plus the request
# object around it), and far below the interpreter's recursion limit, which the decoder, the
# encoder and JSON Schema validation all spend.
MAX_JSON_DEPTH = 256
SERVER_ERROR = {"detail": "Internal server error."}


def nesting_exceeds(value: Any, limit: int) -> bool:
    """Whether `value` (parsed JSON) holds containers nested deeper than `limit` levels.

    Iterative, so it cannot itself run out of stack."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children: Iterable[Any]
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, always strict, with a nesting limit (`MAX_JSON_DEPTH`).

    Raises `ParseError` (400) for malformed JSON, NaN/Infinity and documents nested too deep,
    including those the decoder itself cannot descend (`RecursionError`).
    """

    strict = True  # DRF reads STRICT_JSON once, at import; the host may have turned it off.

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        too_deep = f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels."
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(too_deep) from None
        if nesting_exceeds(data, MAX_JSON_DEPTH):
            raise ParseError(too_deep)
        return data


PARSER_CLASSES = [JSONParser, parsers.FormParser, parsers.MultiPartParser]


class Pagination(LimitOffsetPagination):
    """Limit/offset pages (`count`, `next`, `previous`, `results`), capped.

    `?limit=` above `WEBHOOKS["MAX_PAGE_SIZE"]` gets that many rows; a missing or invalid limit
    gets `WEBHOOKS["PAGE_SIZE"]`. Read on each request, so `override_settings` applies.
    """

    @property
    # Properties where DRF has class attributes: read on each request, so override_settings
    # applies (mypy: a property may not override a plain attribute).
    def default_limit(self) -> int:  # type: ignore[override]
        return int(webhook_settings.PAGE_SIZE)

    @property
    def max_limit(self) -> int:  # type: ignore[override]
        return int(webhook_settings.MAX_PAGE_SIZE)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """The host's DRF exception handler, then a JSON 500 for whatever it leaves unhandled.

    The unhandled exception is logged with its traceback (logger `webhooks_core.api`), sent as
    Django's `got_request_exception` signal (error trackers and the test client listen to it)
    and the request's atomic block, if any, is rolled back, as DRF does for handled errors.
    """
    # A dotted path in the settings, imported by DRF's settings object on access.
    handler = cast(Callable[..., "Response | None"], api_settings.EXCEPTION_HANDLER)
    if handler is exception_handler:  # a host that made this its global handler
        handler = views.exception_handler
    response = handler(exc, context)
    if response is not None:
        return response
    request = context.get("request")
    logger.error(
        "Internal Server Error: %s",
        getattr(request, "path", "?"),
        exc_info=(type(exc), exc, exc.__traceback__),
        extra={"status_code": 500, "request": request},
    )
    got_request_exception.send(sender=None, request=request)
    set_rollback()
    return Response(SERVER_ERROR, status=500)


class APIDefaults:
    """Mixed first into every API view of both apps (before DRF's view classes)."""

    # Typed as DRF's own attributes, which these override in the views' MRO.
    parser_classes: Sequence[type[BaseParser]] = PARSER_CLASSES
    pagination_class: type[BasePagination] | None = Pagination
    schema: ViewInspector | None = AutoSchema()

    def get_exception_handler(self) -> Any:
        return exception_handler

    def finalize_response(self, request: Any, response: Any, *args: Any, **kwargs: Any) -> Any:
        # A refused request (404, 409, 400...) gives back the throttle budget it spent.
        response = super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]
        refund_refused(request, response.status_code)
        return response


F = TypeVar("F", bound=Callable[..., Any])


def extend_schema(**kwargs: Any) -> Callable[[F], F]:
    """drf-spectacular's `extend_schema(**kwargs)` for a view method, built on drf-spectacular's
    `AutoSchema` whatever the host's `DEFAULT_SCHEMA_CLASS`.

    drf-spectacular builds a method's annotation on `DEFAULT_SCHEMA_CLASS` as it is when the
    module is imported, unless the method names its base in a `schema` attribute; in a host
    whose default is DRF's inspector, the schema endpoint would fail on every annotated view.
    """

    def decorate(view_method: F) -> F:
        # The attribute drf-spectacular reads on a view method (a function has no such field).
        view_method.schema = AutoSchema  # type: ignore[attr-defined]
        return spectacular_extend_schema(**kwargs)(view_method)

    return decorate


def server_error(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """A `handler500` for the project's root URLconf: JSON for API requests, Django's page for
    the rest (the admin, the portal).

    An API request is one whose path resolves to a DRF view, or whose client asks for JSON and
    not HTML. Set `handler500 = "webhooks_core.api.server_error"` in the root URLconf.
    """
    if _is_api_request(request):
        return JsonResponse(SERVER_ERROR, status=500)
    return defaults.server_error(request, *args, **kwargs)


def _is_api_request(request: HttpRequest) -> bool:
    match = getattr(request, "resolver_match", None)
    if match is None:
        try:
            match = resolve(request.path_info)
        except Resolver404:
            match = None
        except Exception:  # an error page must not fail itself (a broken URLconf, say)
            match = None
    view_class = getattr(getattr(match, "func", None), "cls", None)
    if isinstance(view_class, type) and issubclass(view_class, APIView):
        return True
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept

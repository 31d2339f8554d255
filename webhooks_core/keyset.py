"""Keyset (cursor) pages for lists that grow with history: the API's event and delivery lists,
the admin's event and delivery lists and the portal's delivery log.

A limit/offset page costs O(offset) (the database reads and throws away every row before it)
and its `count` reads the whole filtered table; a keyset page starts from the position of the
last row seen (`created_at < <cursor>`) on an index ordered the same way, so page 1 and page
20,000 cost the same and nothing is counted. The trade: no page numbers and no total, only
"newer" and "older" links. Small lists (subscriptions, event types, tenants) keep limit/offset
(`webhooks_core.api.Pagination`); docs/api.md says which list uses which.

DRF's `CursorPagination` does the work (opaque base64 cursors, a tie offset for equal
timestamps, forward and backward); Django views (admin, portal) use it through `keyset_page()`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.db.models import QuerySet
from django.http import HttpRequest
from rest_framework import pagination
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request

from .conf import webhook_settings

CURSOR_PARAM = "cursor"
# Newest first; the primary key breaks ties so a page never repeats or skips a row.
NEWEST_FIRST: tuple[str, ...] = ("-created_at", "-pk")


class CursorPagination(pagination.CursorPagination):
    """Pages of `WEBHOOKS["PAGE_SIZE"]` rows (`?limit=` up to `WEBHOOKS["MAX_PAGE_SIZE"]`),
    newest first, answered as `{"next", "previous", "results"}`: no `count`.

    `?offset=` is refused with a 400 naming it rather than ignored: a client that walks pages
    by offset would otherwise get the first page again and again.
    """

    ordering = NEWEST_FIRST
    cursor_query_param = CURSOR_PARAM
    page_size_query_param = "limit"

    def get_page_size(self, request: Request) -> int:
        """`?limit=` capped at `MAX_PAGE_SIZE`; missing, invalid or not positive: `PAGE_SIZE`
        (as `webhooks_core.api.Pagination` treats it). Read per request (override_settings)."""
        default, cap = int(webhook_settings.PAGE_SIZE), int(webhook_settings.MAX_PAGE_SIZE)
        try:
            size = int(request.query_params.get(self.page_size_query_param, ""))
        except ValueError:
            return default
        return min(size, cap) if size > 0 else default

    def paginate_queryset(
        self, queryset: QuerySet, request: Request, view: Any = None
    ) -> list[Any] | None:
        if "offset" in request.query_params:
            raise ValidationError(
                {"offset": ["This list is paged by cursor: follow `next` (no `offset`)."]}
            )
        return super().paginate_queryset(queryset, request, view)


@dataclass
class KeysetPage:
    """One page of a keyset list for a server-rendered view: `rows` in display order and the
    query strings (without `?`) of the older and newer pages, None at either end."""

    rows: list[Any]
    older: str | None
    newer: str | None

    @property
    def paged(self) -> bool:
        return bool(self.older or self.newer)


def keyset_page(
    request: HttpRequest,
    queryset: QuerySet,
    *,
    size: int,
    ordering: Sequence[str] = NEWEST_FIRST,
) -> KeysetPage:
    """The page of `queryset` named by the request's `?cursor=` (the first page without one),
    `size` rows at most, ordered by `ordering` (its first field must be indexed).

    Raises `Http404`-like `NotFound` for a cursor that cannot be decoded (a hand-edited URL).
    """
    paginator = pagination.CursorPagination()
    paginator.ordering = tuple(ordering)
    paginator.page_size = size
    rows = paginator.paginate_queryset(queryset, Request(request)) or []

    def query(link: str | None) -> str | None:
        return urlsplit(link).query if link else None

    return KeysetPage(rows, query(paginator.get_next_link()), query(paginator.get_previous_link()))


__all__ = ["CURSOR_PARAM", "NEWEST_FIRST", "CursorPagination", "KeysetPage", "NotFound"]

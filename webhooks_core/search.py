"""Search terms for the admin's lists, turned into lookups an index answers.

Django's admin compiles `search_fields` into `UPPER(col::text) LIKE UPPER('%term%')` ORed over
every field, ids included: no B-tree index applies, so finding one endpoint by id read every
row. Here an id is matched exactly (primary key), a tenant key exactly, and only the text columns
worth a substring search (an endpoint's URL and description) use `icontains`, which a trigram
index answers on PostgreSQL (migration `0006_subscription_list_indexes`; SQLite scans, as
small installations may).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from django.db.models import Q, QuerySet
from django.http import HttpRequest


def as_uuid(term: str) -> uuid.UUID | None:
    """`term` as a UUID (any spelling `uuid.UUID` accepts), or None."""
    try:
        return uuid.UUID(term.strip())
    except ValueError:
        return None


def as_int(term: str, maximum: int = 2**63 - 1) -> int | None:
    """`term` as a positive integer that fits a bigint column, or None."""
    term = term.strip().lstrip("#")
    if term.isascii() and term.isdigit() and 0 < int(term) <= maximum:
        return int(term)
    return None


def subscription_search(term: str) -> Q:
    """An endpoint by its id (exact), its tenant's key (exact), or a piece of its URL or
    description (substring, trigram-indexed on PostgreSQL)."""
    term = term.strip()
    found = as_uuid(term)
    if found is not None:
        return Q(pk=found)
    return Q(url__icontains=term) | Q(description__icontains=term) | Q(tenant_id=term)


class IndexedSearch:
    """A ModelAdmin mixin: the search box filters with `search_lookup(term)` (a function of
    this module's kind returning a `Q`) instead of Django's `UPPER(col) LIKE` over every
    `search_fields` entry. `search_fields` must still be set: the admin shows the box only
    then."""

    search_lookup: Callable[[str], Q]

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        if not search_term.strip():
            return queryset, False
        return queryset.filter(type(self).search_lookup(search_term)), False

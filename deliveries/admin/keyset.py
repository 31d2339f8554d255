"""Admin lists of history (events, deliveries) that cost the same on page 1 and page 20,000.

Django's changelist counts the filtered rows (`paginator.count`), counts the whole table again
for "N total", offers facets (one COUNT per filter choice) and pages by OFFSET. Over millions of
deliveries each of those reads the table. `KeysetListAdmin` replaces them: pages by keyset on
(created_at, id) through `webhooks_core.keyset`, no count at all, no facets, no column sorting
(a sort by another column has no index to page on), and list filters that take a value typed
in rather than listing every endpoint (`ValueFilter`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters, ShowFacets
from django.contrib.admin.views.main import ChangeList
from django.db.models import Q
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from webhooks_core.keyset import CURSOR_PARAM, NotFound, keyset_page


class KeysetChangeList(ChangeList):
    """A changelist paged by `?cursor=` (newer / older links), never counted."""

    def get_queryset(self, request: HttpRequest, exclude_parameters: Any = None) -> Any:
        # The cursor is a position, not a filter; and no link this page builds (filters,
        # search) keeps it: a new filter starts again at the newest rows.
        self.params.pop(CURSOR_PARAM, None)
        self.filter_params.pop(CURSOR_PARAM, None)
        return super().get_queryset(request, exclude_parameters)

    def get_results(self, request: HttpRequest) -> None:
        try:
            page = keyset_page(request, self.queryset, size=self.list_per_page)
        except NotFound:
            raise IncorrectLookupParameters from None
        self.keyset = page
        self.result_list = page.rows
        # What the admin's templates read: the page's own length (so "select all N" across
        # pages is never offered: an action applies to the rows shown), and no totals.
        self.result_count = len(page.rows)
        self.full_result_count = None
        self.show_full_result_count = False
        self.show_admin_actions = True
        self.can_show_all = False
        self.multi_page = page.paged
        self.paginator = None


class KeysetListAdmin(admin.ModelAdmin):
    """Base of the admins of history tables (rows ordered by `created_at`)."""

    show_full_result_count = False
    show_facets = ShowFacets.NEVER
    sortable_by = ()
    list_per_page = 50

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return KeysetChangeList


def value_filter(
    parameter: str,
    title: Any,
    lookup: str,
    *,
    parse: Any = str,
    help_text: Any = "",
    condition: Callable[[Any], Q] | None = None,
) -> type[admin.SimpleListFilter]:
    """A list filter with a text input instead of links: `?<parameter>=<value>` filters on
    `lookup` (e.g. "subscription_id"), or on `condition(parsed value)` when given (a `Q`, for
    what one lookup cannot say: a wildcard, a JSON filter). For choices that grow with
    customers (endpoints), where a list of links would render every row. `parse(value)`
    converts the typed text and raises ValueError for a value that cannot match (the admin
    answers as for any bad filter, with the error's message when it has one)."""

    class ValueFilter(admin.SimpleListFilter):
        template = "deliveries/admin/value_filter.html"
        parameter_name = parameter

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.title = title
            self.help_text = help_text
            super().__init__(*args, **kwargs)

        def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
            return [(self.value() or "", "")]  # one entry, so the filter is shown

        def queryset(self, request: HttpRequest, queryset: Any) -> Any:
            value = (self.value() or "").strip()
            if not value:
                return queryset
            try:
                parsed = parse(value)
            except (ValueError, TypeError):
                raise IncorrectLookupParameters(_("Not a valid value for this filter.")) from None
            if condition is not None:
                return queryset.filter(condition(parsed))
            return queryset.filter(**{lookup: parsed})

        def choices(self, changelist: ChangeList) -> Any:
            kept = [(name, value) for name, value in changelist.params.items() if name != parameter]
            yield {
                "selected": bool(self.value()),
                "value": self.value() or "",
                "parameter": parameter,
                "kept": kept,
                "help_text": self.help_text,
                "clear_url": changelist.get_query_string(remove=[parameter]),
                "display": "",
                "query_string": "",
            }

    return ValueFilter

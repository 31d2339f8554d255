"""drf-spectacular annotations that hold in any host project, whatever its REST_FRAMEWORK.

The API views of both apps name drf-spectacular's `AutoSchema` themselves (`schema =
AutoSchema()`), so that the schema endpoint works in a host whose `DEFAULT_SCHEMA_CLASS` is
DRF's own. drf-spectacular's `@extend_schema` on a view method builds on the host's
`DEFAULT_SCHEMA_CLASS` as it is when the module is imported, unless the method names its base
in a `schema` attribute; this `extend_schema` names drf-spectacular's, then delegates.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import extend_schema as spectacular_extend_schema

F = TypeVar("F", bound=Callable[..., Any])


def extend_schema(**kwargs: Any) -> Callable[[F], F]:
    """drf-spectacular's `extend_schema(**kwargs)` on drf-spectacular's `AutoSchema`."""

    def decorate(view_method: F) -> F:
        # The first place extend_schema looks for the base of the schema it builds.
        view_method.schema = AutoSchema  # type: ignore[attr-defined]
        return spectacular_extend_schema(**kwargs)(view_method)

    return decorate

"""OpenTelemetry traces of the pipeline: a span for each publish, fan-out and attempt, with the
producer's trace context carried through Celery's messages. Optional: without the
`opentelemetry-api` package every hook here is a constant check (`ENABLED`), and with it but no
SDK configured the API's own no-op spans cost a few microseconds.

Spans (docs/tracing.md lists their attributes):

- `webhooks.publish` (kind PRODUCER): `publish()` / `publish_event()` and `POST /api/events/`;
- `webhooks.fan_out` (INTERNAL): one event's deliveries created and enqueued, inline after the
  producer's commit, in a worker for a large fan-out, or by the sweep;
- `webhooks.attempt` (CLIENT): one attempt that sent a request, from the claim to the record of
  its answer; status ERROR unless the receiver accepted it.

The context goes from the producer into the fan-out (captured when `publish` registers its
on-commit hook, attached when the hook runs) and from there into every message the pipeline
sends (`message_headers()`, the host's configured propagator, into the message's headers; a
Celery retry keeps its request's headers), extracted by the task (`continues_trace`). So one
trace holds the publish, the fan-out and each attempt, retries on a Celery countdown included. A
retry parked in the database and sent by the sweep has no message to carry the context: its
attempt joins the publish span, whose `traceparent` the event keeps (`Event.traceparent`).

Receivers get a `traceparent` header only with `WEBHOOKS["TRACEPARENT_HEADER"]` (off by
default): W3C Trace Context alone, never `tracestate` or baggage, which may carry the host's
own data. It is not part of the signed content (`{id}.{timestamp}.{body}`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from .conf import webhook_settings

try:
    from opentelemetry import context as otel_context
    from opentelemetry import propagate, trace
    from opentelemetry.trace import SpanKind, Status, StatusCode
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError:  # the optional extra `otel` is not installed: every hook is a no-op
    ENABLED = False
else:
    ENABLED = True

if TYPE_CHECKING:
    from .models import Delivery
    from .services.attempts import Outcome
    from .services.publishing import Publication
    from .transport import SendResult

F = TypeVar("F", bound=Callable[..., Any])

# The instrumentation scope: what a backend shows as the spans' library.
SCOPE = "django-webhooks"
# The one header a receiver may get (W3C Trace Context, §3.2).
TRACEPARENT = "traceparent"


# One tracer for the process. Made before the host sets its provider, it is the API's proxy,
# which follows the provider set later (`trace.set_tracer_provider`).
_TRACER = trace.get_tracer(SCOPE) if ENABLED else None


def _tracer() -> Any:
    return _TRACER


# --- Publish and fan-out ------------------------------------------------------------------------


def traced_publish(function: F) -> F:
    """Decorate `publish_event`: a `webhooks.publish` span around it, with the event's tenant,
    type and id, whether it was created now or an idempotent repeat, and the delivery count once
    known. Without OpenTelemetry the function is returned unchanged."""
    if not ENABLED:
        return function

    @functools.wraps(function)
    def wrapper(type: str, *args: Any, **kwargs: Any) -> Publication:
        with _tracer().start_as_current_span(
            "webhooks.publish", kind=SpanKind.PRODUCER, attributes={"webhooks.event_type": type}
        ) as span:
            publication = function(type, *args, **kwargs)
            if span.is_recording():
                event = publication.event
                span.set_attributes(
                    {
                        "webhooks.tenant": str(event.tenant_id),
                        "webhooks.event_id": str(event.pk),
                        "webhooks.created": publication.created,
                    }
                )
                if publication.deliveries is not None:
                    span.set_attribute("webhooks.deliveries", publication.deliveries)
            return publication

    return wrapper  # type: ignore[return-value]


def carry(callback: Callable[[], Any]) -> Callable[[], Any]:
    """`callback` bound to the trace context current now: run later (an on-commit hook), it
    runs within the producer's trace. Without OpenTelemetry, `callback` itself."""
    if not ENABLED:
        return callback
    captured = otel_context.get_current()

    def in_context() -> Any:
        token = otel_context.attach(captured)
        try:
            return callback()
        finally:
            otel_context.detach(token)

    return in_context


def traced_fan_out(function: F) -> F:
    """Decorate `fan_out_counts(event_id, ...)`, the one fan-out every path runs: a
    `webhooks.fan_out` span around it with the count of active deliveries it returns (the
    first of its (queued, skipped) pair); `note_event` adds the event's tenant and type from
    within. Without OpenTelemetry the function is returned unchanged."""
    if not ENABLED:
        return function

    @functools.wraps(function)
    def wrapper(event_id: Any, *args: Any, **kwargs: Any) -> tuple[int, int]:
        with _tracer().start_as_current_span(
            "webhooks.fan_out", attributes={"webhooks.event_id": str(event_id)}
        ) as span:
            counts = function(event_id, *args, **kwargs)
            span.set_attribute("webhooks.deliveries", counts[0])
            return counts

    return wrapper  # type: ignore[return-value]


def note_event(event: Any) -> None:
    """Add the event's tenant and type to the current span (the fan-out's)."""
    if not ENABLED:
        return
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attributes(
            {"webhooks.tenant": str(event.tenant_id), "webhooks.event_type": event.type}
        )


@contextmanager
def resumed(traceparent: str) -> Iterator[None]:
    """Run the block in the trace a kept `traceparent` names (`Event.traceparent`): the sweep
    fans out an event whose on-commit hook never ran within its publish's trace."""
    if not ENABLED or not traceparent:
        yield
        return
    token = otel_context.attach(TraceContextTextMapPropagator().extract({TRACEPARENT: traceparent}))
    try:
        yield
    finally:
        otel_context.detach(token)


def detached(callback: Callable[[], Any]) -> Callable[[], Any]:
    """`callback` run outside any trace: for work on other events than the current trace's
    (their attempts then join their own publish's trace, `Event.traceparent`). Without
    OpenTelemetry, `callback` itself."""
    if not ENABLED:
        return callback

    def outside() -> Any:
        token = otel_context.attach(otel_context.Context())
        try:
            return callback()
        finally:
            otel_context.detach(token)

    return outside


# --- Through Celery -----------------------------------------------------------------------------


def message_headers() -> dict[str, str] | None:
    """The current trace context as Celery message headers (the host's configured propagator:
    W3C `traceparent` by default); None without OpenTelemetry or outside a trace."""
    if not ENABLED:
        return None
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier or None


def continues_trace(function: F) -> F:
    """Decorate a Celery task function (below `@shared_task`): it runs within the trace context
    its message carries (`message_headers()` of the sender; a retry keeps its request's
    headers). Eager tasks (`task_always_eager`) keep the caller's context. Without OpenTelemetry
    the function is returned unchanged."""
    if not ENABLED:
        return function

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from celery import current_task

        carrier = _task_headers(current_task.request if current_task else None)
        if not carrier:
            return function(*args, **kwargs)
        token = otel_context.attach(propagate.extract(carrier))
        try:
            return function(*args, **kwargs)
        finally:
            otel_context.detach(token)

    return wrapper  # type: ignore[return-value]


def _task_headers(request: Any) -> dict[str, str]:
    """The custom headers of a task's message (`Task.request.headers`, Celery's documented
    mapping; a broker that flattened them leaves them as attributes of the request)."""
    if request is None:
        return {}
    headers = getattr(request, "headers", None)
    if isinstance(headers, dict) and headers:
        return headers
    value = getattr(request, TRACEPARENT, None)
    return {TRACEPARENT: value} if isinstance(value, str) else {}


# --- Attempts -----------------------------------------------------------------------------------


def current_traceparent() -> str:
    """The W3C `traceparent` of the current span, kept on the event (`Event.traceparent`); ""
    without OpenTelemetry or outside a trace."""
    if not ENABLED:
        return ""
    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    value = carrier.get(TRACEPARENT, "")
    return value if len(value) <= 64 else ""


def start_attempt(delivery: Delivery, number: int) -> Any:
    """Start the `webhooks.attempt` span of a claimed attempt, or None without OpenTelemetry.
    End it with `end_attempt`.

    Its parent is the trace its message carried (the fan-out's). A message without one (sent by
    the sweep: a retry parked in the database, a lost message) joins the event's publish span,
    kept on the event as `traceparent`.
    """
    if not ENABLED:
        return None
    event = delivery.event
    parent = None
    if event.traceparent and not trace.get_current_span().get_span_context().is_valid:
        parent = TraceContextTextMapPropagator().extract({TRACEPARENT: event.traceparent})
    span = _tracer().start_span("webhooks.attempt", context=parent, kind=SpanKind.CLIENT)
    if span.is_recording():  # an SDK samples it: with the API alone, no attribute is built
        attributes: dict[str, Any] = {
            "http.request.method": "POST",
            "webhooks.tenant": str(event.tenant_id),
            "webhooks.event_type": event.type,
            "webhooks.event_id": str(event.pk),
            "webhooks.subscription_id": str(delivery.subscription_id),
            "webhooks.delivery_id": delivery.pk,
            "webhooks.attempt": number,
        }
        address = _address(delivery.subscription.url)
        if address is not None:
            attributes["server.address"], attributes["server.port"] = address
        span.set_attributes(attributes)
    return span


def add_traceparent(headers: dict[str, str], span: Any) -> None:
    """Add the attempt's `traceparent` to the request's `headers` when TRACEPARENT_HEADER is on
    and the span is sampled. W3C Trace Context only: no `tracestate`, no baggage."""
    if span is None or not webhook_settings.TRACEPARENT_HEADER:
        return
    if not span.get_span_context().is_valid:
        return
    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier, context=trace.set_span_in_context(span))
    if TRACEPARENT in carrier:
        headers[TRACEPARENT] = carrier[TRACEPARENT]


def end_attempt(span: Any, result: SendResult, outcome: Outcome) -> Outcome:
    """End an attempt's span with its answer and what follows, and return `outcome` unchanged.

    `webhooks.status` is the delivery's state after the attempt (succeeded, retrying, failed,
    discarded: the rules of `attempts._ending`), `webhooks.outcome` what the worker does next.
    The span's status is ERROR unless the receiver accepted the webhook (a 2xx).
    """
    if span is None:
        return outcome
    if span.is_recording():
        accepted = result.status is not None and 200 <= result.status < 300
        attributes: dict[str, Any] = {
            "webhooks.outcome": outcome.action,
            "webhooks.duration_ms": result.duration_ms,
        }
        status = _delivery_status(accepted, result.status, outcome.action)
        if status:
            attributes["webhooks.status"] = status
        if result.status is not None:
            attributes["http.response.status_code"] = result.status
        if not accepted:
            # Semantic conventions (error.type): the kind of failure, else the status code.
            attributes["error.type"] = str(result.error_kind or result.status or "_OTHER")
        if result.error_kind:
            attributes["webhooks.error_kind"] = str(result.error_kind)
        span.set_attributes(attributes)
        if not accepted:
            span.set_status(Status(StatusCode.ERROR, (result.error or "")[:200] or None))
    span.end()
    return outcome


def _delivery_status(accepted: bool, status: int | None, action: str) -> str:
    if action == "skip":
        return ""  # the sweep had recorded this attempt already: its state is the sweep's
    if accepted:
        return "succeeded"
    if action in ("retry", "park"):
        return "retrying"
    return "discarded" if status == 410 else "failed"


@functools.lru_cache(maxsize=1024)
def _address(url: str) -> tuple[str, int] | None:
    """Host and port of a destination (never its path or query, which may hold credentials).
    Cached by URL: a worker sends to the same endpoints over and over."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None
    return (parts.hostname, port) if parts.hostname else None

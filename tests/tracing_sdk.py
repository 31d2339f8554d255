"""The OpenTelemetry SDK as a host would configure it, for the tracing tests: one tracer
provider per process (the API allows setting it once), exporting to memory in the test process
and, in a worker process started with tests.settings_otel, to a JSON-lines file the test reads."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
)


class Switch(Sampler):
    """Samples only while `on`: the test process's provider records the tracing tests' spans and
    nothing of the tests that run after them (the API lets a process set its provider once)."""

    def __init__(self) -> None:
        self.on = False
        self._sampled = ParentBased(ALWAYS_ON)

    def should_sample(self, parent_context: Any, trace_id: int, *args: Any, **kwargs: Any) -> Any:
        if not self.on:
            return SamplingResult(Decision.DROP)
        return self._sampled.should_sample(parent_context, trace_id, *args, **kwargs)

    def get_description(self) -> str:
        return "Switch"


_memory: tuple[InMemorySpanExporter, Switch] | None = None


def install(exporter: SpanExporter, sampler: Sampler | None = None) -> None:
    """Set the global tracer provider, exporting each span as it ends."""
    provider = TracerProvider(sampler=sampler) if sampler else TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)


@contextmanager
def recording() -> Iterator[InMemorySpanExporter]:
    """Record this process's spans in memory for the block (the provider installed on first
    use), emptied before it."""
    global _memory
    if _memory is None:
        _memory = (InMemorySpanExporter(), Switch())
        install(*_memory)
    exporter, switch = _memory
    exporter.clear()
    switch.on = True
    try:
        yield exporter
    finally:
        switch.on = False
        exporter.clear()


def file_exporter(path: str) -> SpanExporter:
    """Spans as one JSON object per line, appended to `path` as each span ends."""
    out = open(path, "a", buffering=1)  # noqa: SIM115 - open for the life of the process
    return ConsoleSpanExporter(out=out, formatter=lambda span: span.to_json(indent=None) + "\n")


def read_file_spans(path: Path) -> list[dict[str, Any]]:
    """The spans a worker exported to `path`, in the shape of `as_dict`."""
    if not path.exists():
        return []
    spans = []
    for line in path.read_text().splitlines():
        raw = json.loads(line)
        spans.append(
            {
                "name": raw["name"],
                "trace_id": int(raw["context"]["trace_id"], 16),
                "span_id": int(raw["context"]["span_id"], 16),
                "parent_id": int(raw["parent_id"], 16) if raw["parent_id"] else None,
                "status": raw["status"]["status_code"],
                "attributes": raw["attributes"],
            }
        )
    return spans


def as_dict(span: ReadableSpan) -> dict[str, Any]:
    """An in-memory span in the same shape as a worker's exported one."""
    return {
        "name": span.name,
        "trace_id": span.context.trace_id,
        "span_id": span.context.span_id,
        "parent_id": span.parent.span_id if span.parent else None,
        "status": span.status.status_code.name,
        "attributes": dict(span.attributes or {}),
    }

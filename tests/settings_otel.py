"""Test settings for a worker process that traces: the OpenTelemetry SDK configured as a host
would (at start-up), exporting every span to the JSON-lines file named by OTEL_TEST_SPANS."""

import os

from tests.settings import *  # noqa: F403
from tests.tracing_sdk import file_exporter, install

install(file_exporter(os.environ["OTEL_TEST_SPANS"]))

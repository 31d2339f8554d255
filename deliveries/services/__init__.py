"""The pipeline's business logic. Producers use `publish`; views, admin actions, tasks and
management commands call the functions here and nothing else changes delivery state."""

from .attempts import Outcome, attempt_delivery
from .publishing import (
    IdempotencyConflict,
    PayloadTooLarge,
    Publication,
    PublishError,
    SchemaValidationError,
    expected_counts,
    expected_deliveries,
    fan_out,
    idempotency_key_problem,
    publish,
    publish_event,
    validate_event,
)
from .sweeping import SweepReport, sweep

__all__ = [
    "IdempotencyConflict",
    "Outcome",
    "PayloadTooLarge",
    "Publication",
    "PublishError",
    "SchemaValidationError",
    "SweepReport",
    "attempt_delivery",
    "expected_counts",
    "expected_deliveries",
    "fan_out",
    "idempotency_key_problem",
    "publish",
    "publish_event",
    "sweep",
    "validate_event",
]

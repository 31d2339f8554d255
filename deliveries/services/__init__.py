"""The pipeline's business logic. Producers use `publish`; views, admin actions, tasks and
management commands call the functions here and nothing else changes delivery state."""

from .attempts import Outcome, attempt_delivery
from .publishing import (
    PayloadTooLarge,
    PublishError,
    SchemaValidationError,
    expected_deliveries,
    fan_out,
    idempotency_key_problem,
    publish,
    validate_event,
)
from .sweeping import SweepReport, sweep

__all__ = [
    "Outcome",
    "PayloadTooLarge",
    "PublishError",
    "SchemaValidationError",
    "SweepReport",
    "attempt_delivery",
    "expected_deliveries",
    "fan_out",
    "idempotency_key_problem",
    "publish",
    "sweep",
    "validate_event",
]

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from deliveries.services import PublishError, publish_event


class Command(BaseCommand):
    help = (
        "Publish an event: it is stored and fanned out to the matching active subscriptions of "
        "its tenant (the default one unless --tenant), or of every tenant with --broadcast. "
        "Example: manage.py publish_event order.created --data '{\"id\": 42}' --tenant org_42"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("type", help="Event type, e.g. order.created.")
        parser.add_argument(
            "--data", default="{}", help="Event data as a JSON object (default: {})."
        )
        parser.add_argument(
            "--tenant", default=None, help="Tenant key (default: WEBHOOKS['DEFAULT_TENANT'])."
        )
        parser.add_argument(
            "--broadcast",
            action="store_true",
            help="Send to the matching subscriptions of every tenant.",
        )
        parser.add_argument(
            "--idempotency-key",
            default=None,
            help="Publishing again with the same key returns the first event and sends nothing.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            data = json.loads(options["data"])
        except json.JSONDecodeError as exc:
            raise CommandError(f"--data is not valid JSON: {exc}")
        try:
            publication = publish_event(
                options["type"],
                data,
                tenant=options["tenant"],
                idempotency_key=options["idempotency_key"],
                broadcast=options["broadcast"],
            )
        except PublishError as exc:
            raise CommandError(f"{exc.field}: {exc.message}")
        event = publication.event
        if not publication.created:
            self.stdout.write(f"Event {event.pk} already published with this idempotency key.")
            return
        count, skipped = publication.deliveries, publication.skipped
        target = (
            f"to {count} subscriptions"
            if count is not None
            else "(fan-out runs when the transaction commits)"
        )
        if skipped:
            target += f"; {skipped} recorded as skipped (disabled subscriptions)"
        self.stdout.write(
            self.style.SUCCESS(f"Published event {event.pk} ({event.type}) {target}.")
        )

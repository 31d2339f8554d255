from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from deliveries.services import replay
from subscriptions.models import Subscription

from ._timeparse import parse_when


class Command(BaseCommand):
    help = (
        "Send again a subscription's deliveries created in a time range, with their original "
        "webhook-id. By default a Celery task does it in batches; --inline does it here. "
        "Example: manage.py replay 0190... --since 2h --status failed,discarded"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("subscription", help="Subscription id (UUID).")
        parser.add_argument(
            "--since", required=True, help="ISO 8601 time, or an age such as 30m, 2h, 1d."
        )
        parser.add_argument("--until", help="ISO 8601 time or age; default now.")
        parser.add_argument(
            "--status",
            default=",".join(replay.DEFAULT_REPLAY_STATUSES),
            help=(
                "Comma-separated statuses to replay, among "
                f"{', '.join(replay.REPLAYABLE_STATUSES)} (default: %(default)s)."
            ),
        )
        parser.add_argument(
            "--inline",
            action="store_true",
            help="Reopen and enqueue the deliveries from this process instead of a task.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            subscription = Subscription.objects.get(pk=options["subscription"])
        except (Subscription.DoesNotExist, ValidationError):
            raise CommandError(f"No subscription with id {options['subscription']!r}.")
        since = parse_when(options["since"], "--since")
        until = parse_when(options["until"], "--until") if options["until"] else None
        statuses = [s.strip() for s in options["status"].split(",") if s.strip()]
        try:
            if options["inline"]:
                request = replay.build_request(subscription, since, until, statuses)
                count = replay.run_replay(request)
                verb = "Sent again"
            else:
                result = replay.start_replay(subscription, since, until, statuses)
                request, count, verb = result.request, result.queued, "Queued for replay"
        except replay.ReplayError as exc:
            raise CommandError(exc.message)
        self.stdout.write(
            self.style.SUCCESS(
                f"{verb}: {count} deliveries of {subscription} "
                f"({', '.join(request.statuses)}, {request.since:%Y-%m-%d %H:%M:%S} to "
                f"{request.until:%Y-%m-%d %H:%M:%S})."
            )
        )

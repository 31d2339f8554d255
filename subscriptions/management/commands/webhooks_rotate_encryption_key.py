from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from subscriptions.services import reencrypt_subscriptions
from webhooks_core.encryption import UndecryptableValue


class Command(BaseCommand):
    help = (
        'Re-encrypt every secret stored at rest under the first key of WEBHOOKS["ENCRYPTION_KEYS"]'
        " (after putting a new key first); the old keys may then be removed. Safe to run again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--batch-size", type=int, default=500, help="Rows per transaction (default 500)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1.")
        try:
            count = reencrypt_subscriptions(options["batch_size"])
        except UndecryptableValue as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Re-encrypted the secrets of {count} subscriptions.")

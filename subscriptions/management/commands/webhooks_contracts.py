"""`manage.py webhooks_contracts`: record the schemas of the event types declared in code, and
fail CI when a serializer change breaks a version already published.

    manage.py webhooks_contracts --write   # record the current schemas (commit the file)
    manage.py webhooks_contracts --check   # exit 1 if a recorded version would break

The file (`WEBHOOKS["CONTRACTS_FILE"]`, or `--file`) maps each type to its versions' JSON
Schemas, as makemigrations records models. The logic is in `subscriptions.contract_file`.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from subscriptions.contract_file import compare, current_contracts, read_contracts, write_contracts
from webhooks_core.conf import webhook_settings


class Command(BaseCommand):
    help = (
        "Compare the schemas of the event types declared in code with the recorded ones: "
        "--check fails on a breaking change to a published version, --write records them."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        action = parser.add_mutually_exclusive_group()
        action.add_argument(
            "--check",
            action="store_true",
            help="Exit non-zero if a recorded version changed in a breaking way, or nothing is "
            "recorded yet.",
        )
        action.add_argument(
            "--write", action="store_true", help="Record the current schemas in the file."
        )
        parser.add_argument("--file", help="The record (default: WEBHOOKS['CONTRACTS_FILE']).")
        parser.add_argument(
            "--allow-breaking",
            action="store_true",
            help="With --write: record even a breaking change to a published version.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path = options["file"] or str(webhook_settings.CONTRACTS_FILE)
        current = current_contracts()
        recorded = read_contracts(path)
        if recorded is None:
            if options["check"]:
                raise CommandError(
                    f"No recorded contracts at {path}: run `manage.py webhooks_contracts "
                    "--write` and commit the file."
                )
            recorded = {}
        report = compare(recorded, current)
        for line in report.breaking:
            self.stdout.write(self.style.ERROR(f"BREAKING  {line}"))
        for line in report.compatible:
            self.stdout.write(f"compatible  {line}")
        if options["write"]:
            if report.breaking and not options["allow_breaking"]:
                raise CommandError(
                    "Not written: these changes break published versions. Declare a new "
                    "version with a @downgrade to the old one, or pass --allow-breaking."
                )
            write_contracts(path, current)
            self.stdout.write(self.style.SUCCESS(f"Recorded {report.count} versions in {path}."))
            return
        if report.breaking:
            if options["check"]:
                raise CommandError(
                    f"{len(report.breaking)} breaking change(s) to published event versions: "
                    "declare a new version instead (docs/contracts.md)."
                )
            return
        if report.compatible:
            self.stdout.write(
                f"No breaking change; run `manage.py webhooks_contracts --write` to record "
                f"the {len(report.compatible)} compatible change(s) in {path}."
            )
        else:
            self.stdout.write(f"The {report.count} declared versions match {path}.")

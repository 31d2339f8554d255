from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from deliveries.services import health
from subscriptions.models import Subscription


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


class Command(BaseCommand):
    help = (
        "Print endpoint health (success rate and p95 latency over 24 h, failures in a row, "
        "last success) and the delivery backlog as a table."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--limit", type=int, default=50, help="Most subscriptions listed (default 50)."
        )
        parser.add_argument(
            "--failing", action="store_true", help="Only subscriptions in a failing run."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["limit"] < 1:
            raise CommandError("--limit must be at least 1.")
        now = timezone.now()
        subs = Subscription.objects.order_by("-created_at")
        if options["failing"]:
            subs = subs.filter(failing_since__isnull=False)
        page = list(subs[: options["limit"]])
        figures = health.subscription_health(page, now)
        header = ("subscription", "url", "active", "24h", "success", "p95", "fails", "last success")
        rows = []
        for sub in page:
            h = figures[sub.pk]
            rate = "-" if h.success_rate is None else f"{h.success_rate * 100:.1f}%"
            p95 = "-" if h.p95_ms is None else f"{'>' if h.p95_over else '<='}{h.p95_ms}ms"
            last = "-" if not sub.last_success_at else f"{sub.last_success_at:%Y-%m-%d %H:%M}"
            rows.append(
                (
                    str(sub.pk),
                    _cut(sub.url, 40),
                    "yes" if sub.is_active else "NO",
                    str(h.attempts_24h),
                    rate,
                    p95,
                    str(h.failures_in_a_row),
                    last,
                )
            )
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        line = "  ".join(f"{{:<{w}}}" for w in widths)
        self.stdout.write(line.format(*header))
        self.stdout.write("  ".join("-" * w for w in widths))
        for row in rows:
            self.stdout.write(line.format(*row))
        backlog = health.backlog(now)
        oldest = "-" if backlog.oldest_due_age is None else f"{backlog.oldest_due_age:.0f}s"
        queues = ", ".join(
            f"{name}={'?' if n is None else n}" for name, n in backlog.queues.items()
        )
        self.stdout.write("")
        self.stdout.write(
            f"backlog: due={backlog.due} oldest_due={oldest} sending={backlog.sending} "
            f"queues: {queues}"
        )
        retries = backlog.retries
        if retries is not None:
            self.stdout.write(
                f"retries: retrying={retries.total} (due now={retries.due}, "
                f"soon={retries.soon}, parked={retries.parked}) "
                f"retry queue={'?' if retries.queued is None else retries.queued}"
            )
        counts = health.status_counts()
        self.stdout.write(
            "deliveries (unfinished; finished: created in the last hour): "
            + " ".join(f"{k}={v}" for k, v in sorted(counts.items()))
        )

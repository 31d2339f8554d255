"""The pipeline's keys of the `WEBHOOKS` settings dict, read as `webhook_settings.KEY`.

Same dict and same mechanism as the shared keys (`webhooks_core/conf.py`): one user-facing
setting, each app owning and documenting its own keys (every one is in docs/settings.md).
Values are resolved on access and reset on `setting_changed`.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from webhooks_core.conf import WebhookSettings

DEFAULTS: dict[str, Any] = {
    # Seconds to wait before each attempt, the first one included (0 = at once). Its length is
    # the number of attempts. Jitter is added on top of every non-zero delay.
    "RETRY_SCHEDULE": [0, 5, 300, 1800, 7200, 18000, 36000, 36000],
    # Up to this fraction of each delay is added at random, so that the retries of an endpoint
    # that failed for many deliveries at once do not come back at the same second.
    "RETRY_JITTER": 0.1,
    # Seconds to establish the TCP connection, and the total for one attempt (DNS lookup,
    # connect, TLS handshake, send, wait, read the response). A receiver that trickles its
    # answer, or a resolver that does not answer, is cut at TIMEOUT.
    "CONNECT_TIMEOUT": 5,
    "TIMEOUT": 15,
    # Path of a PEM file of the certificate authorities that receivers' TLS certificates must
    # chain to; None for the bundle requests ships with (certifi). Set it for receivers behind
    # a private CA (the tests use one for their own TLS receiver). Certificates are always
    # verified; there is no switch to turn that off.
    "CA_BUNDLE": None,
    # An HTTP proxy that deliveries (and OAuth2 token requests) go through, e.g.
    # "http://10.0.0.5:3128"; None to connect directly. The destination is still resolved and
    # checked here (the SSRF guard), and the proxy is asked to CONNECT to the checked address,
    # never the name; TLS is still verified against the name. The proxy itself may be on a
    # private address. docs/security.md.
    "EGRESS_PROXY": None,
    # The public addresses deliveries leave from (the proxy's, the NAT's), served at
    # GET /api/egress-ips/ and in the portal for receivers' allow-lists. Informational only.
    "EGRESS_IPS": [],
    # Bytes of each response body kept on the attempt row.
    "MAX_RESPONSE_BODY_BYTES": 16384,
    # Largest accepted event `data`, as compact JSON bytes; the API answers 413 above it.
    "MAX_PAYLOAD_BYTES": 262144,
    # Deepest accepted event `data`: containers (objects, arrays) within containers, the data
    # object itself counting as 1. Deeper data is refused (400 / PublishError) before it reaches
    # JSON Schema validation, the database or a receiver's parser. At most 128.
    "MAX_PAYLOAD_DEPTH": 32,
    # Seconds of continuous failure (no success at all) after which a subscription is disabled.
    "DISABLE_AFTER": 432000,
    # Finished deliveries and their attempts older than this many days are pruned.
    "RETENTION_DAYS": 30,
    # Seconds one prune run may spend deleting (in batches of BATCH_SIZE) before it stops and
    # sends itself again: a budget of time, not of rows, so pruning keeps up at any volume.
    "PRUNE_TIME_BUDGET": 240,
    # Longest wait, in seconds, that is handed to Celery as a retry countdown. Longer waits are
    # parked in the database and sent by the sweep. Two reasons to keep it short: a countdown
    # beyond the broker's visibility timeout is delivered again and again, and countdown (ETA)
    # messages sit in worker memory whatever the prefetch limit, so 100,000 deliveries waiting
    # for a 30-minute retry must be rows, not messages. None means 60 s. Whatever the value, it
    # is capped at half the visibility timeout. With the default schedule only the 5 s retry
    # rides Celery; the 300 s and longer waits are parked (the sweep's interval plus SWEEP_GRACE
    # is how late a parked wait may be).
    "MAX_COUNTDOWN": None,
    # Most deliveries in flight at once to one subscription, unless its `max_in_flight` (the
    # API's `rate_limit` until the next release) says otherwise; None for no cap. A slow
    # endpoint then holds at most this many worker slots while other endpoints' deliveries go
    # on. The counters live in REDIS_URL.
    "MAX_IN_FLIGHT": 10,
    # Most messages of one tenant in the broker at once (first attempts, retries and waits on
    # a cap or a rate together); the rest of its due deliveries wait in the database and are
    # sent, oldest due first, as its messages end (and by the sweep). A fresh event of any
    # tenant then waits behind at most this many messages of each other busy tenant, and a
    # worker holds at most this many countdown messages per tenant. None: one FIFO for all
    # (no fairness between tenants). Counted in REDIS_URL.
    "TENANT_MAX_QUEUED": 200,
    # The Redis that holds the counters every worker shares (in-flight caps), as a redis://,
    # rediss:// or unix:// URL. None: the broker's URL when the broker is Redis. With another
    # broker (RabbitMQ) set it (reference project: env WEBHOOKS_REDIS_URL): without a Redis for
    # the counters, system check webhooks.E030 is an error, so caps are never silently off.
    "REDIS_URL": None,
    # Seconds a delivery over its endpoint's cap waits before trying again; doubled on each
    # further refusal (plus up to 100% jitter) up to MAX_COUNTDOWN, beyond which it is parked
    # for the sweep. The attempt number is not consumed: a busy endpoint is not a failing one.
    # Each refusal costs about 4 ms of worker CPU (a task run and a message).
    "IN_FLIGHT_RETRY_DELAY": 1.0,
    # Seconds a delivery may stay claimed ("sending") before the sweep assumes its worker died,
    # judged on the database's clock from the claim. None derives it from TIMEOUT (the whole
    # attempt's deadline) plus CONNECT_TIMEOUT and a 30 s margin; a value below TIMEOUT plus
    # 10 s is refused by a system check (a POST in flight must never be released).
    "STALE_SENDING_AFTER": None,
    # Seconds a worker's clock may differ from the database's before it logs an error, the
    # metric `webhooks_clock_offset_seconds` passes it and the admin dashboard says so. Claims
    # and staleness never depend on it (the database's clock judges them); the webhook-timestamp
    # header does (receivers reject more than five minutes of skew).
    "CLOCK_OFFSET_LIMIT": 5.0,
    # Seconds past due before the sweep re-enqueues a delivery or fans out an event, so that it
    # does not race the message that is on its way.
    "SWEEP_GRACE": 30,
    # Rows handled per sweep batch and per fan-out insert.
    "BATCH_SIZE": 1000,
    # Events matching more subscriptions than this are fanned out by a worker (a task on the
    # maintenance queue) instead of in the publishing request, so the API answers at once
    # whatever the number of subscribers; smaller ones are fanned out inline (lower latency).
    "FAN_OUT_INLINE_MAX": 500,
    # Enqueued messages sent to Redis per pipelined round trip. Large on purpose: a worker that
    # fans out while its own threads deliver the first messages shares the interpreter lock with
    # them; 10,000 messages went out in 2.7 s in chunks of 5,000 and in 5.0 s in chunks of 500
    # (bench/ scenario C). A chunk of 5,000 buffers about 7 MB.
    "ENQUEUE_CHUNK": 5000,
    # Celery queues: first attempts and retries apart, so a backlog of retries cannot delay
    # fresh events; maintenance (sweep, pruning) apart from both.
    "DELIVERY_QUEUE": "webhooks",
    "RETRY_QUEUE": "webhooks.retry",
    "MAINTENANCE_QUEUE": "webhooks.maintenance",
    # `source` attribute of CloudEvents payloads.
    "CLOUDEVENTS_SOURCE": "/webhooks",
    # `dataschema` attribute of CloudEvents payloads of types declared in code: a URI naming
    # the schema of the version sent ({type}, {version} filled in). A new version is a new URI,
    # as CloudEvents asks of incompatible schema changes. Point it at your published schemas.
    "CLOUDEVENTS_DATASCHEMA": "urn:webhooks:schema:{type}:v{version}",
    "USER_AGENT": "django-webhooks/1.0",
    # With OpenTelemetry installed and configured (docs/tracing.md), send each attempt's W3C
    # `traceparent` header to the receiver, so that its spans join the trace. Off by default: it
    # tells receivers the host's trace ids. Not part of the signed content.
    "TRACEPARENT_HEADER": False,
    # The Prometheus endpoint (/api/metrics/) is off unless enabled: it reveals traffic figures.
    "METRICS_ENABLED": False,
    # When set, a scraper authenticates with `Authorization: Bearer <token>`; signed-in users
    # with the `deliveries.view_delivery` permission may always read it. Keep it out of the
    # code (environment).
    "METRICS_TOKEN": None,
    # Seconds of recent attempts behind the latency histogram and the attempts-by-outcome
    # gauge; about one scrape interval to a few, so a spike shows and then fades.
    "METRICS_WINDOW": 300,
    # Operational notices (an endpoint starts failing, is disabled, recovers: one per
    # incident, always recorded and sent as the `endpoint_notice` signal). Optionally also:
    # an email to the endpoint's contact (Django's `send_mail`, from DEFAULT_FROM_EMAIL)...
    "NOTICE_EMAIL": False,
    # ...and a POST to an operator URL (JSON, Standard Webhooks headers), signed when
    # NOTICE_WEBHOOK_SECRET (a `whsec_...` secret) is set. Sent by the same function as the
    # deliveries, so the same SSRF rules apply to it.
    "NOTICE_WEBHOOK_URL": None,
    "NOTICE_WEBHOOK_SECRET": None,
    # Seconds a `recovered` notice waits before it is final (signalled, emailed, posted). An
    # endpoint that fails again within them (flapping) opens no new incident: one `failing`
    # ... `recovered` pair covers the whole flapping period. 0: every recovery is final at once.
    "NOTICE_COOLDOWN": 900,
    # Most notices emailed and posted per tenant per rolling hour; the next one sent after a
    # pause says how many were held back (they stay recorded, in the admin and the portal).
    # None or 0: no cap.
    "NOTICE_HOURLY_CAP": 10,
    # Most deliveries one bulk retry (POST /api/deliveries/retry/, the admin's and the portal's
    # "retry the matches") may queue; a search matching more is refused with a 400 (its dry run
    # too), so one click never queues a whole table. Requests are throttled by
    # THROTTLE_RATES["bulk_retry"].
    "BULK_RETRY_MAX": 10000,
}


REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def is_redis_url(url: str) -> bool:
    return url.startswith(REDIS_SCHEMES)


def redis_form(url: str) -> str:
    """`url` as redis-py reads it: kombu's `redis+socket://` is redis-py's `unix://`."""
    if url.startswith("redis+socket://"):
        return "unix://" + url[len("redis+socket://") :]
    return url


def celery_broker_url() -> str:
    """The first broker URL of the current Celery app (kombu allows a failover list)."""
    from celery import current_app

    url = current_app.conf.broker_url or ""
    if isinstance(url, list | tuple):
        url = url[0] if url else ""
    return str(url).split(";")[0].strip()


class PipelineSettings(WebhookSettings):
    """The pipeline's keys, with the values derived from them."""

    @property
    def max_countdown(self) -> float:
        """Longest retry countdown: MAX_COUNTDOWN (default 60 s), never more than half the
        broker's visibility timeout, so no countdown message is ever handed out twice."""
        options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", None) or {}
        # Kombu's Redis transport defaults to one hour when the option is not set.
        bound = float(options.get("visibility_timeout", 3600)) / 2
        wanted = 60.0 if self.MAX_COUNTDOWN is None else float(self.MAX_COUNTDOWN)
        return min(wanted, bound)

    @property
    def redis_url(self) -> str | None:
        """Where the shared counters live: REDIS_URL, else the Celery broker's URL if it is a
        Redis URL; None when there is no Redis for them."""
        if self.REDIS_URL:
            return redis_form(str(self.REDIS_URL))
        broker = redis_form(celery_broker_url())
        return broker if is_redis_url(broker) else None

    @property
    def egress_ips(self) -> list[str]:
        """EGRESS_IPS as strings, in the order given (the API and the portal list them)."""
        return [str(ip) for ip in self.EGRESS_IPS or ()]

    @property
    def stale_sending_after(self) -> int:
        if self.STALE_SENDING_AFTER is not None:
            return int(self.STALE_SENDING_AFTER)
        return int(self.TIMEOUT) + int(self.CONNECT_TIMEOUT) + 30


webhook_settings = PipelineSettings(DEFAULTS)

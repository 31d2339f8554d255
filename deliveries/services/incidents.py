"""The tables of what an incident leaves undelivered, for the notices (services/notices.py) and
the replays (services/replay.py): which statuses a replay may select and selects by default,
which an outage or each notice kind should replay, and the margin before an incident's start.
One place, so a notice's replay link and the admin's outage offer select the same deliveries.
"""

from __future__ import annotations

import datetime as dt

from ..models import DeliveryStatus, NoticeKind

#: What a replay selects when no status is given.
DEFAULT_REPLAY_STATUSES: tuple[str, ...] = (DeliveryStatus.FAILED, DeliveryStatus.DISCARDED)

#: What a replay may select. `skipped` holds what a disabled subscription missed; `succeeded`
#: lets an operator re-send a range the receiver lost on its side; `retrying` sends now what
#: waits for a later attempt (after an outage is fixed, the backoff would otherwise hold those
#: deliveries for hours): the attempt it makes is the one that was scheduled, and the waiting
#: message for it finds it taken and does nothing.
REPLAYABLE_STATUSES: tuple[str, ...] = (
    DeliveryStatus.FAILED,
    DeliveryStatus.DISCARDED,
    DeliveryStatus.SKIPPED,
    DeliveryStatus.SUCCEEDED,
    DeliveryStatus.RETRYING,
)

#: What an outage leaves undelivered: failed in the failing run, discarded when the
#: subscription was disabled, skipped while it was (retrying ones were discarded by the disable).
OUTAGE_STATUSES: tuple[str, ...] = (
    DeliveryStatus.SKIPPED,
    DeliveryStatus.DISCARDED,
    DeliveryStatus.FAILED,
)

#: What a replay after each kind of notice should send. While failing or once recovered: what
#: failed or was discarded, and what still waits in the backoff (sent now rather than hours
#: later). Once disabled: what the outage left undelivered.
REPLAY_STATUSES: dict[str, tuple[str, ...]] = {
    NoticeKind.FAILING: (DeliveryStatus.FAILED, DeliveryStatus.DISCARDED, DeliveryStatus.RETRYING),
    NoticeKind.RECOVERED: (
        DeliveryStatus.FAILED,
        DeliveryStatus.DISCARDED,
        DeliveryStatus.RETRYING,
    ),
    NoticeKind.DISABLED: OUTAGE_STATUSES,
}

#: Slack before an incident's start (`failing_since`, `disabled_at`): both are written when the
#: delivery that caused them has finished, after its row was updated, so the incident's
#: deliveries are counted from a little earlier.
INCIDENT_MARGIN = dt.timedelta(minutes=1)

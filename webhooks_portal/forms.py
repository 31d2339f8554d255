"""The portal's forms. Endpoint input is checked by the API's own serializers (URL rules and SSRF
guard, event type filters, header rules), so a rule can never differ between the two."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any, cast

from django import forms
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers as drf
from rest_framework.settings import api_settings

from deliveries.forms import ReplayForm as BaseReplayForm
from deliveries.models import DeliveryStatus
from deliveries.serializers import SimulationRequestSerializer
from deliveries.services.logsearch import (
    DeliverySearch,
    InvalidFilter,
    statuses_of,
    validated_filter,
)
from deliveries.services.simulation import DEFAULT_LIMIT as SIMULATION_LIMIT
from subscriptions.catalog import PinnedType
from subscriptions.forms import HeaderLinesField, destination_rule
from subscriptions.headers import mask_headers
from subscriptions.matching import is_valid_filter
from subscriptions.models import (
    EventType,
    EventTypeVersion,
    PayloadFormat,
    SignatureScheme,
    Subscription,
)
from subscriptions.serializers import SubscriptionCreateSerializer, SubscriptionSerializer

from .humanize import duration

DATETIME_FORMAT = "%Y-%m-%dT%H:%M"


class DateTimeLocalInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs, format=DATETIME_FORMAT)


def event_type_choices(kept: list[str] | tuple[str, ...] = ()) -> list[tuple[str, str | Promise]]:
    """Every filter a tenant may pick: all types, each family ('order.*'), each catalog type,
    and whatever the endpoint already has that the catalog no longer lists."""
    names = list(EventType.objects.order_by("name").values_list("name", flat=True))
    families = sorted({name.rsplit(".", 1)[0] + ".*" for name in names if "." in name})
    choices: list[tuple[str, str | Promise]] = [("*", _("All event types (*)"))]
    choices += [(f, _("Every %(family)s event") % {"family": f}) for f in families]
    choices += [(name, name) for name in names]
    known = {value for value, _label in choices}
    choices += [(value, value) for value in kept if value not in known]
    return choices


class FilterField(forms.CharField):
    """A filter typed as JSON text (docs/filters.md); empty means none ({}). Its rules are the
    API's (`filterlang.validate_filter`, through the serializers)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("label", _("Filter (optional)"))
        kwargs.setdefault(
            "help_text",
            _(
                'Only events it matches are sent, e.g. {"data.total": {"$gte": 100}}. JSON over '
                "type, channels and paths into the data such as data.customer.region; "
                "operators $eq $ne $gt $gte $lt $lte $in $nin $exists, $and $or $not. Empty: "
                "every event of the selected types."
            ),
        )
        kwargs.setdefault(
            "widget",
            forms.Textarea(attrs={"rows": 4, "spellcheck": "false", "class": "code"}),
        )
        super().__init__(required=False, strip=True, max_length=16384, **kwargs)

    def clean(self, value: Any) -> Any:
        text = super().clean(value)
        if not text:
            return {}
        try:
            return json.loads(text)
        except ValueError as exc:
            raise forms.ValidationError(
                _("Not JSON: %(problem)s.") % {"problem": exc.args[0] if exc.args else exc}
            ) from None

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, dict | list):
            return json.dumps(value, indent=2, ensure_ascii=False) if value else ""
        return value


class ChannelsField(forms.CharField):
    """Channel names separated by commas or spaces; empty for every channel."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("label", _("Channels (optional)"))
        kwargs.setdefault(
            "help_text",
            _(
                "Only events carrying one of these channels are sent, e.g. eu, vip. Separate "
                "them with commas or spaces; empty for events of every channel."
            ),
        )
        kwargs.setdefault("widget", forms.TextInput(attrs={"spellcheck": "false"}))
        super().__init__(required=False, max_length=2000, **kwargs)

    def clean(self, value: Any) -> list[str]:
        text = super().clean(value) or ""
        return [name for name in re.split(r"[,\s]+", text) if name]

    def prepare_value(self, value: Any) -> Any:
        return ", ".join(value) if isinstance(value, list | tuple) else value


def _serializer_errors(
    form: forms.Form, errors: dict[str, Any], refused: set[str] | frozenset[str] = frozenset()
) -> None:
    """Add the serializer's `errors` to `form`, except those on the fields the form itself
    `refused` (left out of the serializer's input) and, while some field is refused, the checks
    across fields (they ran on partial input and wait for the next submit)."""
    for field, messages in errors.items():
        if field in refused or (refused and field == api_settings.NON_FIELD_ERRORS_KEY):
            continue
        target = field if field in form.fields else None
        for message in messages if isinstance(messages, list) else [messages]:
            form.add_error(target, str(message))


class SimulationForm(forms.Form):
    """The draft of the endpoint form that the preview panel simulates: its event types,
    filter and channels, checked by the simulation API's serializer."""

    event_types = forms.MultipleChoiceField(label=_("Event types"))
    filter = FilterField()
    channels = ChannelsField()

    def __init__(self, *args: Any, kept: tuple[str, ...] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["event_types"]).choices = event_type_choices(kept)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.errors:
            return cleaned
        data = {
            "event_types": cleaned["event_types"],
            "filter": cleaned.get("filter") or {},
            "channels": cleaned.get("channels") or [],
            "limit": SIMULATION_LIMIT,
        }
        serializer = SimulationRequestSerializer(data=data)
        if serializer.is_valid():
            cleaned.update(serializer.validated_data)
        else:
            _serializer_errors(self, serializer.errors)
        return cleaned


class EndpointForm(forms.Form):
    """Create or edit an endpoint; `save()` goes through the API's serializer."""

    url = forms.CharField(
        label=_("Endpoint URL"),
        max_length=2048,
        help_text=_("Where events are POSTed, e.g. https://example.com/webhooks."),
        widget=forms.URLInput(attrs={"autocomplete": "url", "spellcheck": "false"}),
    )
    description = forms.CharField(
        label=_("Description"),
        required=False,
        max_length=500,
        help_text=_("A name for you, e.g. 'Order sync'."),
    )
    event_types = forms.MultipleChoiceField(
        label=_("Event types"),
        widget=forms.CheckboxSelectMultiple,
        help_text=_("The events this endpoint receives."),
    )
    filter = FilterField()
    channels = ChannelsField()
    payload_format = forms.ChoiceField(
        label=_("Payload format"),
        choices=PayloadFormat.choices,
        initial=PayloadFormat.STANDARD,
        widget=forms.RadioSelect,
    )
    signature_scheme = forms.ChoiceField(
        label=_("Signatures"),
        choices=SignatureScheme.choices,
        initial=SignatureScheme.V1,
        required=False,  # left out: unchanged (v1 for a new endpoint)
        widget=forms.RadioSelect,
        help_text=_(
            "v1 signs with the shared secret; v1a with a private key whose public key is shown "
            "on the endpoint's page; both while your receiver moves to v1a."
        ),
    )
    # Write-only: the stored values never reach the page (see HeaderLinesField).
    headers = HeaderLinesField(label=_("Custom headers"))
    max_in_flight = forms.IntegerField(
        label=_("Most deliveries at once"),
        required=False,
        min_value=1,
        help_text=_(
            "At least 1; leave empty for the default. To pause deliveries, disable the endpoint."
        ),
    )

    max_rate = forms.FloatField(
        label=_("Most events per second"),
        required=False,
        min_value=0.01,
        max_value=10_000,
        help_text=_(
            "Deliveries over this rate wait their turn (they do not fail); 0.5 is one event "
            "every 2 seconds. Leave empty for the default."
        ),
    )

    def __init__(self, *args: Any, instance: Subscription | None = None, **kwargs: Any) -> None:
        self.instance = instance
        if instance is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "url": instance.url,
                "description": instance.description,
                "event_types": list(instance.event_types or ()),
                "filter": instance.filter or {},
                "channels": list(instance.channels or ()),
                "payload_format": instance.payload_format,
                "signature_scheme": instance.signature_scheme,
                "headers": mask_headers(instance.headers or {}),
                "max_in_flight": instance.max_in_flight,
                "max_rate": instance.max_rate,
            }
        super().__init__(*args, **kwargs)
        # The settings in force, not a fixed "HTTPS only" (a demo allows http://127.0.0.1).
        self.url_rule = destination_rule()
        self.fields["url"].help_text = _(
            "Where events are POSTed, e.g. https://example.com/webhooks. %(rule)s"
        ) % {
            "rule": self.url_rule
        }
        kept = tuple(instance.event_types or ()) if instance is not None else ()
        cast(forms.ChoiceField, self.fields["event_types"]).choices = event_type_choices(kept)
        self.serializer: drf.Serializer | None = None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        # The serializer checks the fields that passed the form's own checks even when others
        # did not, so that every error shows on the first submit (a bad header line and an
        # ftp:// URL together, issue 28). A field the form refused is left out of its input,
        # and the serializer's say on it (e.g. "required") is not added to the form's.
        refused = set(self.errors)
        data = {
            "url": cleaned.get("url"),
            "description": cleaned.get("description") or "",
            "event_types": cleaned.get("event_types"),
            "filter": cleaned.get("filter") or {},
            "channels": cleaned.get("channels") or [],
            "payload_format": cleaned.get("payload_format"),
            "headers": cleaned.get("headers") or {},
            "max_in_flight": cleaned.get("max_in_flight"),
            "max_rate": cleaned.get("max_rate"),
        }
        if cleaned.get("signature_scheme"):
            data["signature_scheme"] = cleaned["signature_scheme"]
        data = {name: value for name, value in data.items() if name not in refused}
        if self.instance is None:
            serializer: drf.Serializer = SubscriptionCreateSerializer(data=data)
        else:
            serializer = SubscriptionSerializer(self.instance, data=data, partial=True)
        if not serializer.is_valid():
            _serializer_errors(self, serializer.errors, refused)
        elif not refused:
            self.serializer = serializer
        return cleaned

    def save(self, **extra: Any) -> Subscription:
        """Create or update through the serializer; `extra` (e.g. the tenant) is saved too."""
        assert self.serializer is not None, "save() after a successful is_valid()"
        return self.serializer.save(**extra)


class RotateForm(forms.Form):
    """How long the old secret (and v1a key) keep signing after a rotation."""

    overlap = forms.TypedChoiceField(
        label=_("Old secret keeps signing for"),
        coerce=int,
        required=False,  # left out: the default overlap
        empty_value=None,
        help_text=_("Choose none if the old secret leaked: it stops signing at once."),
    )

    def __init__(self, *args: Any, default: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices: dict[int, str | Promise] = {
            0: _("None: stop at once"),
            3600: _("1 hour"),
            7 * 86400: _("7 days"),
        }
        choices.setdefault(default, _("%(overlap)s (the default)") % {"overlap": duration(default)})
        cast(forms.ChoiceField, self.fields["overlap"]).choices = sorted(choices.items())
        self.fields["overlap"].initial = default


class DeliveryFilterForm(forms.Form):
    """The delivery log's search (the API's criteria, `deliveries.services.logsearch`); every
    field optional. The event type takes the forms endpoints subscribe with (`invoice.*`, `*`),
    the filter a JSON filter over the event."""

    endpoint = forms.ChoiceField(label=_("Endpoint"), required=False)
    type = forms.CharField(
        label=_("Event type"),
        required=False,
        max_length=255,
        help_text=_("invoice.paid, invoice.* or *"),
        widget=forms.TextInput(attrs={"list": "event-type-names", "spellcheck": "false"}),
    )
    response_status = forms.IntegerField(
        label=_("Response status"),
        required=False,
        min_value=100,
        max_value=599,
        widget=forms.NumberInput(attrs={"placeholder": "503"}),
    )
    since = forms.DateTimeField(label=_("From"), required=False, widget=DateTimeLocalInput())
    until = forms.DateTimeField(label=_("Until"), required=False, widget=DateTimeLocalInput())
    status = forms.MultipleChoiceField(
        label=_("Status"),
        required=False,
        choices=DeliveryStatus.choices,
        widget=forms.CheckboxSelectMultiple(attrs={"class": "status-choices"}),
    )
    filter = forms.CharField(
        label=_("Event filter (JSON)"),
        required=False,
        max_length=4000,
        help_text=_('e.g. {"data.amount": {"$gt": 100}}'),
        widget=forms.TextInput(attrs={"spellcheck": "false", "autocomplete": "off"}),
    )

    def __init__(self, *args: Any, endpoints: list[Subscription] | None, **kwargs: Any) -> None:
        """`endpoints`: the tenant's endpoints to choose from, or None when there are more than
        `ENDPOINT_CHOICES_MAX`: the field then takes an endpoint id typed in, so that a
        tenant with 10,000 endpoints does not get a 1 MB `<select>`."""
        super().__init__(*args, **kwargs)
        zone = timezone.get_current_timezone_name()
        self.fields["since"].label = _("From (%(zone)s)") % {"zone": zone}
        self.fields["until"].label = _("Until (%(zone)s)") % {"zone": zone}
        if endpoints is None:
            self.fields["endpoint"] = forms.UUIDField(
                label=_("Endpoint id"),
                required=False,
                widget=forms.TextInput(attrs={"spellcheck": "false", "size": 36}),
                help_text=_("Copy it from the endpoint's page."),
            )
        else:
            field = cast(forms.ChoiceField, self.fields["endpoint"])
            field.choices = [("", _("Every endpoint"))] + [
                (str(sub.pk), str(sub)) for sub in endpoints
            ]

    def clean_type(self) -> str:
        value = self.cleaned_data.get("type") or ""
        if value and not is_valid_filter(value):
            raise forms.ValidationError(
                _("Give an event type (invoice.paid), a prefix wildcard (invoice.*) or *.")
            )
        return value

    def clean_filter(self) -> dict[str, Any] | None:
        raw = (self.cleaned_data.get("filter") or "").strip()
        if not raw:
            return None
        try:
            value = json.loads(raw)
        except ValueError as exc:
            raise forms.ValidationError(_("Not JSON: %(error)s.") % {"error": exc}) from exc
        try:
            return validated_filter(value)
        except InvalidFilter as exc:
            raise forms.ValidationError(exc.messages) from exc

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since >= until:
            self.add_error("until", _("Must be after 'From'."))
        return cleaned

    def search(self) -> DeliverySearch:
        """The valid form's criteria."""
        data = self.cleaned_data
        endpoint = data.get("endpoint")
        return DeliverySearch(
            statuses=statuses_of(data.get("status") or ()),
            response_status=data.get("response_status"),
            since=data.get("since"),
            until=data.get("until"),
            event_type=data.get("type") or None,
            subscription=uuid.UUID(str(endpoint)) if endpoint else None,
            filter=data.get("filter"),
        )


class ReplayForm(BaseReplayForm):
    """The admin's replay form with browser date pickers."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["since"].widget = DateTimeLocalInput()
        self.fields["until"].widget = DateTimeLocalInput()
        zone = timezone.get_current_timezone_name()
        self.fields["since"].label = _("From")
        self.fields["until"].label = _("Until")
        self.fields["status"].label = _("Deliveries that ended as")
        self.fields["status"].help_text = _(
            "Skipped deliveries are the events published while the endpoint was disabled."
        )
        self.fields["since"].help_text = _(
            "Deliveries created at or after this time (%(zone)s)."
        ) % {"zone": zone}
        self.fields["until"].help_text = _(
            "Deliveries created before this time (%(zone)s); empty for now."
        ) % {"zone": zone}


class VersionForm(forms.Form):
    """The version of one declared event type an endpoint receives: the versions it may move
    to (not deprecated) and its current one."""

    version = forms.TypedChoiceField(label=_("Version"), coerce=int)

    def __init__(self, *args: Any, pinned: PinnedType, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["version"]).choices = [
            (row.version, version_label(row, pinned.current, pinned.latest))
            for row in reversed(pinned.choices())
        ]


def version_label(row: EventTypeVersion, current: int, latest: int) -> str:
    """A version as the select lists it: "3 (latest)", "1 (current, deprecated)"."""
    notes = []
    if row.version == latest:
        notes.append(str(_("latest")))
    if row.version == current:
        notes.append(str(_("current")))
    if row.deprecated:
        notes.append(str(_("deprecated")))
    return f"{row.version} ({', '.join(notes)})" if notes else str(row.version)

"""The subscription registry's API shapes, and every rule a subscriber's input must meet."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import jsonschema
import referencing.exceptions
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import extend_schema_field
from jsonschema.validators import validator_for
from referencing import Registry
from referencing.jsonschema import DRAFT202012, specification_with
from rest_framework import serializers

from webhooks_core import wire
from webhooks_core.netguard import BlockedDestination, resolve_destination
from webhooks_core.text import find_unstorable

from . import filterlang, reenable, services
from .catalog import PinError, default_pins, merge_pins
from .channels import CHANNEL_MAX_LENGTH, MAX_CHANNELS, validate_channels
from .contracts import MAX_VERSION
from .credentials import (
    MAX_CLIENT_ID_LENGTH,
    MAX_CLIENT_SECRET_LENGTH,
    MAX_PEM_BYTES,
    MAX_SCOPE_LENGTH,
    CertificateError,
    check_client_certificate,
    same_origin,
)
from .eventschema import pattern_problems
from .headers import (
    HEADER_MASK,
    HEADER_NAME_RE,
    HEADER_VALUE_RE,
    is_reserved_header,
    mask_headers,
    unmask_headers,
)
from .matching import EVENT_TYPE_MAX_LENGTH, is_valid_event_type, is_valid_filter, is_wildcard
from .models import (
    MAX_RATE_PER_SECOND,
    MIN_RATE_PER_SECOND,
    TENANT_KEY_MAX_LENGTH,
    EventType,
    EventTypeVersion,
    SignatureScheme,
    Subscription,
    is_valid_tenant_key,
)
from .secrets import validate_secret

# Size limits: a subscription is configuration, not storage.
MAX_EVENT_TYPES = 100
MAX_HEADERS = 20
MAX_HEADER_NAME_LENGTH = 256
MAX_HEADER_VALUE_LENGTH = 4096
MAX_RATE_LIMIT = 10_000


def validate_finite(value: float | None) -> None:
    """Refuse NaN and the infinities, which `float()` accepts from a string ("nan") and which
    pass any min/max comparison."""
    if value is not None and not math.isfinite(value):
        raise serializers.ValidationError(_("A finite number is required."))
IN_FLIGHT_MIN_MESSAGE = gettext_lazy(
    "At least 1. Null means the default; to pause deliveries, disable the endpoint."
)
MAX_SCHEMA_BYTES = 65_536
MAX_DESCRIPTION_LENGTH = 5000
# Deepest accepted schema (containers within containers): a schema for data nested
# MAX_PAYLOAD_DEPTH deep needs about twice that ("properties" and a name per level). Schema
# checks recurse through every level, so the limit keeps them far from Python's stack limit.
MAX_SCHEMA_DEPTH = 64
# Longest overlap a rotation may ask for: a week (DESIGN.md, rotate-secret).
MAX_ROTATION_OVERLAP = 7 * 24 * 3600
# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ), separated by single spaces.
SCOPE_RE = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+( [\x21\x23-\x5b\x5d-\x7e]+)*\Z")
# Client ids and secrets go into a Basic header (RFC 6749 §2.3.1): visible ASCII and spaces.
CREDENTIAL_RE = re.compile(r"^[\x20-\x7e]+\Z")


class EventTypeVersionSerializer(wire.ModelSerializer):
    class Meta:
        model = EventTypeVersion
        fields = ["version", "schema", "example", "deprecated"]
        read_only_fields = fields


class EventTypeSerializer(wire.ModelSerializer):
    """A catalog entry. Types declared in code (`declared`) list their `versions` and are
    changed in code only; hand-typed ones have a `schema` and no versions."""

    versions = EventTypeVersionSerializer(many=True, read_only=True)

    class Meta:
        model = EventType
        fields = ["name", "description", "schema", "declared", "versions", "created_at"]
        read_only_fields = ["declared", "created_at"]
        extra_kwargs = {
            "name": {"trim_whitespace": False},
            "description": {"max_length": MAX_DESCRIPTION_LENGTH, "trim_whitespace": False},
        }

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if self.instance is not None and self.instance.declared:
            # The next migrate would overwrite the change: refuse it rather than lose it.
            raise serializers.ValidationError(
                _("This event type is declared in code; change it there.")
            )
        return attrs

    def validate_name(self, value: str) -> str:
        if not is_valid_event_type(value):
            raise serializers.ValidationError(
                _("A dotted name of letters, digits, '_' and '-', such as 'order.created'.")
            )
        return value

    def validate_schema(self, value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, dict | bool):
            raise serializers.ValidationError(_("A JSON Schema is an object (or a boolean)."))
        # Stored as jsonb on PostgreSQL (no U+0000) and checked recursively below: refused
        # here, with the place named, rather than failing in the database or the checker.
        problem = find_unstorable(value, max_depth=MAX_SCHEMA_DEPTH)
        if problem is not None:
            raise serializers.ValidationError(
                _("This schema cannot be stored: %(problem)s.") % {"problem": problem}
            )
        if len(json.dumps(value)) > MAX_SCHEMA_BYTES:
            raise serializers.ValidationError(
                _("A schema is at most %(n)d bytes.") % {"n": MAX_SCHEMA_BYTES}
            )
        try:
            validator_for(value).check_schema(value)
        except jsonschema.SchemaError as exc:
            raise serializers.ValidationError(
                _("Not a valid JSON Schema: %(error)s") % {"error": exc.message}
            ) from exc
        problems = pattern_problems(value)
        if problems:
            # Checked with RE2 at publish time (linear time): a pattern RE2 cannot run would
            # make every publish of the type fail, so it is refused here, where it is fixed.
            raise serializers.ValidationError(problems)
        if isinstance(value, dict):
            check_references(value)
        return value


def check_references(schema: dict[str, Any]) -> None:
    """Refuse `$ref`s that leave the schema or lead nowhere.

    A remote reference would make publishing fetch a URL (or fail); a dangling local one would
    make every publish of the type fail. Both are caught here, where the author can fix them.
    """
    refs = list(_references(schema))
    if not refs:
        return
    spec = specification_with(str(schema.get("$schema", "")), default=DRAFT202012)
    resolver = Registry().with_resource("", spec.create_resource(schema)).resolver()
    for ref in refs:
        if not ref.startswith("#"):
            raise serializers.ValidationError(
                _("Only references inside the schema ('#/...') are allowed, not %(ref)r.")
                % {"ref": ref}
            )
        try:
            resolver.lookup(ref)
        except referencing.exceptions.Unresolvable as exc:
            raise serializers.ValidationError(
                _("The reference %(ref)r leads nowhere in this schema.") % {"ref": ref}
            ) from exc


def _references(node: Any) -> Any:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in {"$ref", "$dynamicRef", "$recursiveRef"} and isinstance(value, str):
                yield value
            else:
                yield from _references(value)
    elif isinstance(node, list):
        for item in node:
            yield from _references(item)


class MaskedHeadersField(serializers.DictField):
    """Custom headers: names shown, values never (`HEADER_MASK` in their place)."""

    def to_representation(self, value: dict[str, str]) -> dict[str, str]:
        return mask_headers(value or {})


def check_destination(value: str) -> None:
    """The SSRF guard's verdict on a URL the sender will call, as a field error."""
    try:
        resolve_destination(value)
    except BlockedDestination as exc:
        raise serializers.ValidationError(str(exc)) from exc


@extend_schema_field(
    {
        "type": "object",
        "nullable": True,
        "properties": {
            "token_url": {"type": "string", "format": "uri"},
            "client_id": {"type": "string"},
            "client_secret": {"type": "string", "writeOnly": True},
            "scope": {"type": "string"},
        },
    }
)
class OAuth2Field(serializers.Field):
    """`oauth2`: `{"token_url", "client_id", "client_secret", "scope"}` for the OAuth2 client
    credentials grant (RFC 6749 §4.4), or null for none.

    Read back without `client_secret`, which is write-only. On a change, an omitted
    `client_secret` keeps the stored one, unless `token_url` moves to another origin: the
    stored secret is never sent anywhere its owner did not send it.
    """

    FIELDS = ("token_url", "client_id", "client_secret", "scope")
    NONE = {
        "oauth2_token_url": "",
        "oauth2_client_id": "",
        "oauth2_client_secret": "",
        "oauth2_scope": "",
    }

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(source="*", **kwargs)

    def run_validation(self, data: Any = serializers.empty) -> Any:
        if data is None:
            return dict(self.NONE)
        return super().run_validation(data)

    def to_representation(self, instance: Subscription) -> dict[str, str] | None:
        if not instance.oauth2_token_url:
            return None
        return {
            "token_url": instance.oauth2_token_url,
            "client_id": instance.oauth2_client_id,
            "scope": instance.oauth2_scope,
        }

    def to_internal_value(self, data: Any) -> dict[str, str]:
        if not isinstance(data, dict):
            raise serializers.ValidationError(
                _("An object with token_url, client_id, client_secret and scope, or null.")
            )
        errors: dict[str, list[str]] = {}
        unknown = sorted(str(key) for key in data if key not in self.FIELDS)
        for key in unknown:
            errors[key[:80]] = [_("Unknown field.")]
        values = {name: data.get(name) for name in self.FIELDS}
        for name, value in values.items():
            if value is not None and not isinstance(value, str):
                errors[name] = [_("A string.")]
        if any(name in errors for name in self.FIELDS):
            raise serializers.ValidationError(errors)
        token_url = (values["token_url"] or "").strip()
        stored = getattr(self.parent, "instance", None)
        result = {"oauth2_token_url": token_url}
        try:
            serializers.URLField(max_length=2048).run_validation(token_url)
            check_destination(token_url)
        except serializers.ValidationError as exc:
            errors["token_url"] = [str(message) for message in exc.detail]
        client_id = values["client_id"] or ""
        if not CREDENTIAL_RE.match(client_id) or len(client_id) > MAX_CLIENT_ID_LENGTH:
            errors["client_id"] = [
                _("1 to %(n)d printable ASCII characters.") % {"n": MAX_CLIENT_ID_LENGTH}
            ]
        result["oauth2_client_id"] = client_id
        secret = values["client_secret"]
        if secret is None:
            keeps = (
                stored is not None
                and stored.oauth2_client_secret
                and same_origin(stored.oauth2_token_url, token_url)
            )
            if not keeps:
                errors["client_secret"] = [
                    _("Required (it is kept only while the token URL stays on its origin).")
                ]
        elif not CREDENTIAL_RE.match(secret) or len(secret) > MAX_CLIENT_SECRET_LENGTH:
            errors["client_secret"] = [
                _("1 to %(n)d printable ASCII characters.") % {"n": MAX_CLIENT_SECRET_LENGTH}
            ]
        else:
            result["oauth2_client_secret"] = secret
        scope = values["scope"] or ""
        if scope and (not SCOPE_RE.match(scope) or len(scope) > MAX_SCOPE_LENGTH):
            errors["scope"] = [_("Scope tokens (RFC 6749 §3.3) separated by single spaces.")]
        result["oauth2_scope"] = scope
        if errors:
            raise serializers.ValidationError(errors)
        return result


class SubscriptionSerializer(wire.ModelSerializer):
    """A subscription as its tenant sees it; the secret is never part of it.

    `tenant` is chosen on creation by users with the model permission to act across tenants
    (context `tenant_scope`); a tenant user's subscriptions are always their own tenant's.
    It never changes afterwards.
    """

    tenant = serializers.CharField(
        source="tenant_id",
        required=False,
        max_length=TENANT_KEY_MAX_LENGTH,
        trim_whitespace=False,
        help_text=_(
            "The tenant this endpoint belongs to. Set on creation by users allowed to act "
            "across tenants; defaults to the caller's tenant."
        ),
    )

    event_types = serializers.ListField(
        child=serializers.CharField(max_length=EVENT_TYPE_MAX_LENGTH, trim_whitespace=False),
        min_length=1,
        max_length=MAX_EVENT_TYPES,
        help_text=_("Event type names from the catalog, 'prefix.*' or '*'."),
    )
    filter = serializers.JSONField(
        required=False,
        allow_null=True,
        help_text=_(
            "A JSON filter over the event (`type`, `channels`, `data.<path>`; operators $eq $ne "
            "$gt $gte $lt $lte $in $nin $exists, combined with $and $or $not): only events it "
            "matches are sent. {} or null: every event of the selected types. See "
            "docs/filters.md."
        ),
    )
    channels = serializers.ListField(
        child=serializers.CharField(max_length=CHANNEL_MAX_LENGTH, trim_whitespace=False),
        required=False,
        max_length=MAX_CHANNELS,
        help_text=_(
            "Only events carrying at least one of these channels are sent; [] (the default) "
            "for events of every channel."
        ),
    )
    headers = MaskedHeadersField(
        child=serializers.CharField(
            max_length=MAX_HEADER_VALUE_LENGTH, allow_blank=True, trim_whitespace=False
        ),
        required=False,
        help_text=_(
            "Static headers sent with every delivery, e.g. an Authorization header. Write-only: "
            "values are shown as '%(mask)s' here, in the admin, the portal and the delivery log; "
            "sending '%(mask)s' back keeps the stored value. A 'url' on another origin (scheme, "
            "host or port) needs 'headers' in the same request: the values again, or {} to drop "
            "them."
        )
        % {"mask": HEADER_MASK},
    )
    max_in_flight = serializers.IntegerField(
        min_value=1,
        max_value=MAX_RATE_LIMIT,
        allow_null=True,
        required=False,
        error_messages={"min_value": IN_FLIGHT_MIN_MESSAGE},
        help_text=_(
            "Most deliveries in flight at once to this endpoint, 1 to %(max)d; null for the "
            "default (MAX_IN_FLIGHT). 0 is refused: to pause deliveries, disable the endpoint."
        )
        % {"max": MAX_RATE_LIMIT},
    )
    max_rate = serializers.FloatField(
        min_value=MIN_RATE_PER_SECOND,
        max_value=MAX_RATE_PER_SECOND,
        allow_null=True,
        required=False,
        validators=[validate_finite],
        help_text=_(
            "Most events per second to this endpoint, across all workers, %(min)s to %(max)d "
            "(0.5 is one event every 2 s); over it deliveries wait their turn without spending "
            "an attempt, with a burst of at most one second's worth. null for the tenant's "
            "default, else MAX_RATE (none unless set)."
        )
        % {"min": MIN_RATE_PER_SECOND, "max": MAX_RATE_PER_SECOND},
    )
    # The field's name until this release (DESIGN.md): read and written as `max_in_flight`.
    rate_limit = serializers.IntegerField(
        source="max_in_flight",
        min_value=1,
        max_value=MAX_RATE_LIMIT,
        allow_null=True,
        required=False,
        error_messages={"min_value": IN_FLIGHT_MIN_MESSAGE},
        help_text=_("Deprecated alias of max_in_flight, kept for one release."),
    )
    versions = serializers.DictField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_VERSION),
        required=False,
        help_text=_(
            "Event type name -> the version this endpoint receives, for types declared in code. "
            "On creation every selected declared type is pinned to its latest version; later, "
            "the types given move (to a version that is not deprecated) and the others keep "
            "their pins."
        ),
    )
    signature_scheme = serializers.ChoiceField(
        choices=SignatureScheme.choices,
        required=False,
        help_text=_(
            "'v1' (HMAC with the secret, the default), 'v1a' (ed25519, verified with "
            "`public_key`), or 'v1 v1a' while the receiver moves to v1a."
        ),
    )
    public_key = serializers.CharField(
        read_only=True,
        allow_null=True,
        help_text=_("The `whpk_` public key that verifies v1a signatures; null without v1a."),
    )
    oauth2 = OAuth2Field(
        required=False,
        help_text=_(
            "OAuth2 client credentials: a bearer token is fetched from `token_url` and sent "
            "with every delivery. `client_secret` is write-only. null removes it."
        ),
    )
    tls_client_cert = serializers.CharField(
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        max_length=MAX_PEM_BYTES,
        help_text=_("PEM client certificate (and chain) for mutual TLS; empty for none."),
    )
    tls_client_key = serializers.CharField(
        required=False,
        allow_blank=True,
        write_only=True,
        trim_whitespace=False,
        max_length=MAX_PEM_BYTES,
        help_text=_("PEM private key of `tls_client_cert`, unencrypted; write-only."),
    )

    class Meta:
        model = Subscription
        fields = [
            "id",
            "tenant",
            "url",
            "description",
            "event_types",
            "filter",
            "channels",
            "is_active",
            "disabled_reason",
            "payload_format",
            "headers",
            "max_in_flight",
            "rate_limit",
            "max_rate",
            "versions",
            "signature_scheme",
            "public_key",
            "oauth2",
            "tls_client_cert",
            "tls_client_key",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "disabled_reason", "created_at", "updated_at"]
        # Taken exactly: a URL or description with surrounding spaces is refused, not trimmed.
        extra_kwargs = {
            "url": {"trim_whitespace": False},
            "description": {"trim_whitespace": False},
        }

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        given = getattr(self, "initial_data", {})
        if (
            isinstance(given, dict)
            and "max_in_flight" in given
            and "rate_limit" in given
            and given["max_in_flight"] != given["rate_limit"]
        ):
            raise serializers.ValidationError(
                {"rate_limit": [_("An alias of max_in_flight: give one of them, or the same.")]}
            )
        if self.instance is not None and "secret" in getattr(self, "initial_data", {}):
            # Silently ignoring it would leave the subscriber believing the secret changed.
            raise serializers.ValidationError(
                {"secret": [_("Use POST .../rotate-secret/ to change the secret.")]}
            )
        self._check_client_certificate(attrs)
        self._check_headers_follow_origin(attrs)
        stored = self.instance
        if (
            stored is not None
            and stored.oauth2_token_url
            and "url" in attrs
            and "oauth2_token_url" not in attrs
            and not same_origin(stored.url, attrs["url"])
        ):
            # The bearer token is good for the old receiver: it does not follow the URL to
            # another origin unless the subscriber says so.
            raise serializers.ValidationError(
                {
                    "oauth2": [
                        _("A url change to another origin must carry oauth2 again (null drops it).")
                    ]
                }
            )
        return attrs

    def _check_client_certificate(self, attrs: dict[str, Any]) -> None:
        if "tls_client_cert" not in attrs and "tls_client_key" not in attrs:
            return
        stored = self.instance
        cert = attrs.get("tls_client_cert", stored.tls_client_cert if stored else "")
        key = attrs.get("tls_client_key", stored.tls_client_key if stored else "")
        if not cert and not key:
            return
        if not cert or not key:
            missing = "tls_client_cert" if not cert else "tls_client_key"
            raise serializers.ValidationError(
                {missing: [_("A client certificate and its key go together.")]}
            )
        try:
            check_client_certificate(cert, key)
        except CertificateError as exc:
            field = "tls_client_key" if exc.part == "key" else "tls_client_cert"
            raise serializers.ValidationError({field: [str(exc)]}) from exc

    def _check_headers_follow_origin(self, attrs: dict[str, Any]) -> None:
        """Stored header values never go to another origin (scheme, host or port) unless the
        same request gives them again (or `{}` to drop them): whoever may edit an endpoint
        could otherwise point it at their own host and collect the receiver's credentials
        without ever seeing them. The same origin keeps them (api.md)."""
        instance = self.instance
        if instance is None or "url" not in attrs or not instance.headers:
            return
        if same_origin(attrs["url"], instance.url):
            return
        sent = self.initial_data.get("headers") if hasattr(self, "initial_data") else None
        if not isinstance(sent, dict):
            raise serializers.ValidationError(
                {
                    "headers": [
                        _(
                            "The URL moves to another origin (scheme, host or port): send "
                            "'headers' in the same request, with their values again or {} to "
                            "drop them. Stored header values are never sent to a new origin."
                        )
                    ]
                }
            )
        kept = sorted(name for name, value in sent.items() if value == HEADER_MASK)
        if kept:
            raise serializers.ValidationError(
                {
                    "headers": [
                        _(
                            "The URL moves to another origin (scheme, host or port): stored "
                            "values cannot follow it. Give the values of %(names)s again, or "
                            "remove those headers."
                        )
                        % {"names": ", ".join(kept)}
                    ]
                }
            )

    def validate_tenant(self, value: str) -> str:
        if not is_valid_tenant_key(value):
            raise serializers.ValidationError(
                _(
                    "A tenant key is 1 to 255 letters, digits, '.', '_', ':' or '-', and not "
                    "'.' or '..'."
                )
            )
        if self.instance is not None:
            if value != self.instance.tenant_id:
                # Its deliveries and history belong to the tenant it was created in.
                raise serializers.ValidationError(_("The tenant of a subscription never changes."))
            return value
        scope = self.context.get("tenant_scope")
        if scope is not None and not scope.all_tenants and value != scope.tenant:
            raise serializers.ValidationError(
                _("Only users allowed to act across tenants choose the tenant.")
            )
        return value

    def validate_url(self, value: str) -> str:
        check_destination(value)
        return value

    def validate_event_types(self, value: list[str]) -> list[str]:
        value = list(dict.fromkeys(value))
        for item in value:
            if not is_valid_filter(item):
                raise serializers.ValidationError(
                    _("%(item)r is not an event type name, 'prefix.*' or '*'.") % {"item": item}
                )
        # Names kept from before need not still be in the catalog (a type may have been
        # removed since); new exact names must be, so a typo does not silently match nothing.
        kept = set(self.instance.event_types or ()) if self.instance is not None else set()
        exact = {item for item in value if not is_wildcard(item) and item not in kept}
        known = set(EventType.objects.filter(name__in=exact).values_list("name", flat=True))
        unknown = sorted(exact - known)
        if unknown:
            raise serializers.ValidationError(
                _("Unknown event types: %(names)s.") % {"names": ", ".join(unknown)}
            )
        return value

    def validate_filter(self, value: Any) -> dict[str, Any]:
        # A Django ValidationError naming the path inside the filter; DRF makes it the
        # field's error.
        return {} if value is None else filterlang.validate_filter(value)

    def validate_channels(self, value: list[str]) -> list[str]:
        return validate_channels(value)

    def validate_versions(self, value: dict[str, int]) -> dict[str, int]:
        current = self.instance.versions if self.instance is not None else {}
        try:
            return merge_pins(current, value)
        except PinError as exc:
            raise serializers.ValidationError(str(exc)) from exc

    def validate_headers(self, value: dict[str, str]) -> dict[str, str]:
        stored = self.instance.headers if self.instance is not None else {}
        try:
            value = unmask_headers(value, stored)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from exc
        if len(value) > MAX_HEADERS:
            raise serializers.ValidationError(
                _("At most %(n)d custom headers.") % {"n": MAX_HEADERS}
            )
        seen: set[str] = set()
        for name, header_value in value.items():
            if len(name) > MAX_HEADER_NAME_LENGTH or not HEADER_NAME_RE.fullmatch(name):
                raise serializers.ValidationError(
                    _("%(name)r is not a valid header name.") % {"name": name[:80]}
                )
            if is_reserved_header(name):
                raise serializers.ValidationError(
                    _("The header %(name)r is set by the webhook sender.") % {"name": name}
                )
            if name.lower() in seen:
                raise serializers.ValidationError(
                    _("The header %(name)r is given twice.") % {"name": name}
                )
            seen.add(name.lower())
            if not HEADER_VALUE_RE.fullmatch(header_value):
                raise serializers.ValidationError(
                    _(
                        "The value of %(name)r must be printable ASCII without line breaks or "
                        "surrounding spaces."
                    )
                    % {"name": name}
                )
        return value

    def create(self, validated_data: dict[str, Any]) -> Subscription:
        is_active = validated_data.pop("is_active", True)
        validated_data["versions"] = {
            **default_pins(validated_data.get("event_types", ())),
            **validated_data.get("versions", {}),
        }
        subscription = super().create(validated_data)
        if not is_active:
            services.disable_subscription(subscription, _("Created disabled."))
        return subscription

    def update(self, instance: Subscription, validated_data: dict[str, Any]) -> Subscription:
        # The active flag goes through the services, so the signals fire (disabling discards
        # the deliveries waiting for this endpoint).
        is_active = validated_data.pop("is_active", None)
        disabled_at, failing_since = instance.disabled_at, instance.failing_since
        if "event_types" in validated_data:
            # Declared types selected now for the first time start at their latest version.
            validated_data["versions"] = {
                **default_pins(validated_data["event_types"]),
                **instance.versions,
                **validated_data.get("versions", {}),
            }
        instance = super().update(instance, validated_data)
        if is_active is True:
            if services.enable_subscription(instance):
                # What it missed while disabled, added to the answer (subscriptions.reenable).
                self.reenabled = reenable.report(instance, disabled_at, failing_since)
        elif is_active is False:
            services.disable_subscription(instance, _("Disabled through the API."))
        return instance


def well_formed_secret(value: str) -> None:
    try:
        validate_secret(value)
    except ValueError as exc:
        raise serializers.ValidationError(str(exc)) from exc


class SubscriptionCreateSerializer(SubscriptionSerializer):
    """Create: the one time the secret is shown. A client may bring its own secret."""

    secret = serializers.CharField(
        required=False,
        max_length=128,
        validators=[well_formed_secret],
        help_text=_(
            "Optional: 'whsec_' + base64 of 24 to 64 random bytes. Generated when omitted. "
            "Returned in this response only."
        ),
    )

    class Meta(SubscriptionSerializer.Meta):
        fields = [*SubscriptionSerializer.Meta.fields, "secret"]


class RotateSecretSerializer(serializers.Serializer):
    secret = serializers.CharField(
        required=False,
        max_length=128,
        write_only=True,
        validators=[well_formed_secret],
        help_text=_("Optional new secret; generated when omitted."),
    )
    overlap = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=MAX_ROTATION_OVERLAP,
        help_text=_(
            "Seconds the old secret (and v1a key) keep signing beside the new ones, 0 to "
            "604800; the default is SECRET_ROTATION_OVERLAP."
        ),
    )


class RotatedSecretSerializer(serializers.Serializer):
    """The answer to a rotation: the new secret, shown this once."""

    id = serializers.UUIDField()
    secret = serializers.CharField()
    previous_secret_expires_at = wire.DateTimeField(
        help_text=_("Until then the old secret (and v1a key) sign beside the new ones.")
    )
    public_key = serializers.CharField(
        allow_null=True, help_text=_("The new `whpk_` public key for v1a; null without v1a.")
    )

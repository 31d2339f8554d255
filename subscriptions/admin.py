from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db import router, transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern
from django.utils.cache import add_never_cache_headers
from django.utils.functional import Promise
from django.utils.html import format_html
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from webhooks_core.search import IndexedSearch, subscription_search
from webhooks_core.wrap import breakable

from . import services
from .forms import HeaderLinesField, destination_rule
from .headers import mask_headers
from .models import EventType, EventTypeVersion, Subscription, Tenant
from .serializers import EventTypeSerializer, SubscriptionSerializer


def _messages(errors: Any) -> list[str]:
    """Flatten DRF errors (lists, or dicts for per-key errors of a dict field) to strings."""
    if isinstance(errors, dict):
        return [message for value in errors.values() for message in _messages(value)]
    if isinstance(errors, list | tuple):
        return [str(message) for message in errors]
    return [str(errors)]


def exact_text_fields(form: forms.BaseForm) -> None:
    """Take every text field of `form` exactly as typed: Django strips by default, the API does
    not, and the two doors must accept and refuse the same strings (" order.created" is an
    error in both, not a silent fix in one)."""
    for field in form.fields.values():
        if isinstance(field, forms.CharField):
            field.strip = False


class TenantAdminForm(forms.ModelForm):
    """A tenant as typed: key and name taken exactly (see `exact_text_fields`). The admin
    supplies the model and fields (`modelform_factory`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        exact_text_fields(self)


class APIRulesForm(forms.ModelForm):
    """A model form held to the API serializer's rules: one set of rules, whichever door is
    used. `checked_fields` go through `serializer_class`; its errors land on the fields."""

    serializer_class: Any = None
    checked_fields: tuple[str, ...] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        exact_text_fields(self)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        data = {name: cleaned[name] for name in self.checked_fields if name in cleaned}
        serializer = self.serializer = self.serializer_class(
            instance=self.instance if self.instance.pk else None, data=data, partial=True
        )
        if not serializer.is_valid():
            for field, errors in serializer.errors.items():
                target = field if field in self.fields else None
                for message in _messages(errors):
                    self.add_error(target, message)
        return cleaned


class EventTypeAdminForm(APIRulesForm):
    """An event type made in the admin: the API's name and schema rules (size, references,
    nothing PostgreSQL cannot store)."""

    serializer_class = EventTypeSerializer
    checked_fields = ("name", "description", "schema")

    class Meta:
        model = EventType
        fields = ["name", "description", "schema"]


class SubscriptionAdminForm(APIRulesForm):
    """Holds a subscription made in the admin to the API's rules (SSRF guard, known event
    types, legal and unreserved headers, limits)."""

    def clean_filter(self) -> Any:
        value = self.cleaned_data.get("filter")
        return {} if value in (None, "") else value

    def clean_channels(self) -> Any:
        value = self.cleaned_data.get("channels")
        return [] if value in (None, "") else value

    serializer_class = SubscriptionSerializer
    checked_fields = (
        "url",
        "description",
        "event_types",
        "filter",
        "channels",
        "payload_format",
        "headers",
        "max_in_flight",
        "max_rate",
    )

    url = forms.URLField(
        label=_("URL"),
        max_length=2048,
        assume_scheme="https",
        help_text=_("Where events are POSTed."),
    )
    # Write-only, as in the API and the portal: names shown, values never.
    headers = HeaderLinesField(label=_("Custom headers"))

    class Meta:
        model = Subscription
        # Never the secrets: they are shown once after creation and changed by rotation.
        fields = [
            "tenant",
            "owner",
            "url",
            "description",
            "event_types",
            "filter",
            "channels",
            "is_active",
            "payload_format",
            "signature_scheme",
            "headers",
            "max_in_flight",
            "max_rate",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "tenant" in self.fields:
            # Left empty: the default tenant, as in code that names none.
            self.fields["tenant"].required = False
            self.fields["tenant"].help_text = _("Empty for the default tenant.")
        if "signature_scheme" in self.fields:
            self.fields["signature_scheme"].required = False
        if "url" in self.fields:
            # The settings in force (ALLOW_HTTP, ALLOW_PRIVATE_NETWORKS), read per form.
            self.fields["url"].help_text = _("Where events are POSTed. %(rule)s") % {
                "rule": destination_rule()
            }
        # Empty means none, as in the API: no filter, every channel (the columns hold {} / []).
        for name in ("filter", "channels"):
            if name in self.fields:
                self.fields[name].required = False
        # Header values are write-only, as in the API: the form shows the mask, and a value
        # left as the mask (or empty) keeps the stored one.
        self.initial["headers"] = mask_headers(self.instance.headers or {})

    def clean_signature_scheme(self) -> str:
        # Left out of a submitted form: unchanged (v1 for a new subscription).
        return self.cleaned_data.get("signature_scheme") or self.instance.signature_scheme

    def clean_tenant(self) -> Tenant:
        return self.cleaned_data.get("tenant") or Tenant.objects.default()

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if "headers" in cleaned and not self.errors:
            # The serializer resolved the kept values (and refused them for a new origin).
            cleaned["headers"] = self.serializer.validated_data.get("headers", {})
        tenant = cleaned.get("tenant")
        if self.instance._state.adding and tenant is not None:
            # The API's limit holds here too (the API also locks; a race in the admin may
            # overshoot by one, which an operator can undo).
            try:
                with transaction.atomic():
                    services.tenant_for_new_subscription(tenant.pk)
            except services.SubscriptionLimitReached as exc:
                self.add_error("tenant", str(exc))
        return cleaned


def tenant_filter(field_path: str, shown: int = 50) -> type[admin.SimpleListFilter]:
    """A list filter by tenant on `field_path` (e.g. "tenant_id", "subscription__tenant_id"):
    `?tenant=<key>` narrows any changelist to one tenant. The sidebar offers the first
    `shown` tenants by key (and the one chosen), not thousands; the tenant list links here."""

    class TenantFilter(admin.SimpleListFilter):
        title = _("tenant")
        parameter_name = "tenant"

        def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
            keys = list(Tenant.objects.order_by("key").values_list("key", flat=True)[:shown])
            chosen = self.value()
            if chosen and chosen not in keys:
                keys.append(chosen)
            return [(key, key) for key in keys]

        def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
            if self.value():
                return queryset.filter(**{field_path: self.value()})
            return queryset

    return TenantFilter


class AdminExtension:
    """Changelist columns another app adds to one of the registry's admins, without replacing
    or re-registering it (see `SubscriptionAdminExtension`, `TenantAdminExtension`)."""

    #: Extra changelist columns: callables taking the row's object, decorated with
    #: `@admin.display` for their header (and `ordering` if they sort).
    list_display: Sequence[Callable[[Any], Any]] = ()
    #: Extra admin actions, as for `ModelAdmin.actions` (callables, `@admin.action`).
    actions: Sequence[Callable[..., Any]] = ()

    def prepare_page(self, model_admin: Any, request: HttpRequest, page: list[Any]) -> None:
        """Called with the changelist's page of objects before it renders (to compute figures
        for the page's columns in a few queries instead of one per row)."""


class ExtensibleAdmin(admin.ModelAdmin):
    """A registry admin other apps extend with `register_extension(extension)`, from their
    `admin` module (imported by the admin's autodiscovery), instead of replacing it. The
    extensions apply to this admin class and its subclasses, on every admin site."""

    #: The extensions, by class (one of each), in registration order. Each concrete admin
    #: below has its own dict; subclasses share their parent's.
    _extensions: ClassVar[dict[type, AdminExtension]]
    #: What `register_extension` accepts for this admin.
    extension_type: ClassVar[type[AdminExtension]]
    #: Extension columns go right after this column (at the end if it is not shown).
    extension_columns_after = ""
    #: The admin's own actions; the extensions' follow them.
    own_actions: Sequence[Any] = ()

    @classmethod
    def register_extension(cls, extension: AdminExtension) -> None:
        """Add `extension` (an instance of `extension_type`) to this admin. Registering another
        instance of the same class replaces the first, so a module imported twice adds nothing.

        Raises TypeError for an extension of the other admin (a tenant extension given to the
        subscription admin, say): its hooks would never be called.
        """
        if not isinstance(extension, cls.extension_type):
            raise TypeError(
                f"{cls.__name__} takes {cls.extension_type.__name__} instances, "
                f"not {type(extension).__name__}"
            )
        cls._extensions[type(extension)] = extension

    @classmethod
    def unregister_extension(cls, extension_class: type[AdminExtension]) -> None:
        """Remove the extension of class `extension_class`, if registered."""
        cls._extensions.pop(extension_class, None)

    @property
    def extensions(self) -> list[Any]:
        return list(self._extensions.values())

    @property
    def actions(self) -> list:  # type: ignore[override]
        return [*self.own_actions, *(a for ext in self.extensions for a in ext.actions)]

    def get_list_display(self, request: HttpRequest) -> list:
        columns = [c for ext in self.extensions for c in ext.list_display]
        own = list(super().get_list_display(request))
        at = (
            own.index(self.extension_columns_after) + 1
            if self.extension_columns_after in own
            else len(own)
        )
        return [*own[:at], *columns, *own[at:]]

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        response = super().changelist_view(request, extra_context)
        cl = getattr(response, "context_data", {}).get("cl")
        if cl is not None:
            # Evaluating the page caches its objects; the template then renders these same
            # objects, with whatever the extensions computed for them.
            page = list(cl.result_list)
            for ext in self.extensions:
                ext.prepare_page(self, request, page)
        return response


class TenantAdminExtension(AdminExtension):
    """What another app adds to the tenant admin: columns, and `prepare_page` to compute them
    for the page. Register an instance with `TenantAdmin.register_extension(...)` from your
    app's `admin` module."""


@admin.register(Tenant)
class TenantAdmin(ExtensibleAdmin):
    form = TenantAdminForm
    list_display = ["key", "name", "contact_email", "limits"]
    # Headers wrap at spaces, so the health columns fit at 1,400 px with the sidebar open.
    change_list_template = "subscriptions/admin/tenant_change_list.html"
    search_fields = ["key", "name", "contact_email"]
    _extensions: ClassVar[dict[type, AdminExtension]] = {}
    extension_type = TenantAdminExtension
    # The pipeline's health figures follow the name.
    extension_columns_after = "name"
    # Tenants grow with customers: no count of the whole table; pages of 50 (each row
    # carries its health figures).
    show_full_result_count = False
    list_per_page = 50

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # The key is what subscriptions and events point to: fixed once created.
        fields = list(super().get_readonly_fields(request, obj))
        return [*fields, "key"] if obj is not None else fields

    @admin.display(description=_("limits (subscriptions / in flight)"))
    def limits(self, obj: Tenant) -> str:
        """The limits in force: the row's own, else the settings' defaults (∞: none)."""

        def shown(value: int | None) -> str:
            return "∞" if value is None else str(value)

        return f"{shown(obj.subscription_limit)} / {shown(obj.in_flight_limit)}"


class SubscriptionAdminExtension(AdminExtension):
    """What another app adds to the subscription admin, without replacing or re-registering it.

    Register an instance with `SubscriptionAdmin.register_extension(...)` from your app's
    `admin` module. Every part is optional; the admin asks for them on each request.
    """

    def get_urls(self, model_admin: SubscriptionAdmin) -> list[URLPattern]:
        """Extra admin URLs, under the subscription admin's prefix."""
        return []

    def object_links(
        self, model_admin: SubscriptionAdmin, request: HttpRequest, obj: Subscription
    ) -> list[tuple[str, str | Promise, str]]:
        """Links for the change form's object tools: `(html id, label, url)`."""
        return []

    def after_enable(self, enabled: Enabled) -> None:
        """Called after the admin enabled a subscription."""

    def disable_consequences(
        self, model_admin: SubscriptionAdmin, request: HttpRequest, subscription: Subscription
    ) -> list[str]:
        """What disabling `subscription` would do besides stopping it, one sentence each, for
        the confirmation page (e.g. "12 deliveries waiting to be sent will be discarded.")."""
        return []

    def after_disable(
        self,
        model_admin: SubscriptionAdmin,
        request: HttpRequest,
        subscriptions: list[Subscription],
        reason: str,
    ) -> None:
        """Called once after the admin disabled `subscriptions` (those it did disable), to
        report what the disabling did (`model_admin.message_user`)."""

    def object_panels(
        self, model_admin: SubscriptionAdmin, request: HttpRequest, obj: Subscription
    ) -> list[str]:
        """Blocks of safe HTML shown at the top of the change form (e.g. notices)."""
        return []


@dataclass(frozen=True)
class Enabled:
    """A subscription the admin just enabled, and the outage it had: when it was disabled and
    since when it had been failing (either may be None)."""

    model_admin: SubscriptionAdmin
    request: HttpRequest
    subscription: Subscription
    disabled_at: dt.datetime | None
    failing_since: dt.datetime | None


class EventTypeVersionInline(admin.TabularInline):
    """A declared type's versions, as the last migrate wrote them from the code: read-only."""

    model = EventTypeVersion
    fields = readonly_fields = ("version", "deprecated", "description", "created_at")
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(EventType)
class EventTypeAdmin(admin.ModelAdmin):
    form = EventTypeAdminForm
    list_display = ["name", "description", "has_schema", "declared", "created_at"]
    list_filter = ["declared"]
    search_fields = ["name", "description"]
    inlines = [EventTypeVersionInline]

    @admin.display(boolean=True, description=_("schema"))
    def has_schema(self, obj: EventType) -> bool:
        return bool(obj.schema)


# Longest URL shown whole in the changelist; longer ones are cut in the middle (the full URL is
# in the cell's title and on the change form).
URL_DISPLAY_LENGTH = 48


def short_url(url: str, limit: int = URL_DISPLAY_LENGTH) -> str:
    """`url` if it fits in `limit` characters, else its start and end around an ellipsis (the
    host and the last path segment are what tell endpoints apart)."""
    if len(url) <= limit:
        return url
    keep = limit - 1
    return f"{url[: keep - keep // 3]}…{url[-(keep // 3) :]}"


@admin.register(Subscription)
class SubscriptionAdmin(IndexedSearch, ExtensibleAdmin):
    form = SubscriptionAdminForm
    # The endpoint (its description over its URL, each shown once) and its status lead; the
    # extensions' columns (the pipeline's health figures) follow at once, so that on a laptop
    # screen they are on screen next to the name, not after the tenant, owner and dates.
    # Tenant and owner are a line of the endpoint's cell, not columns of their own (the date
    # is on the endpoint's page): every column fits beside the navigation sidebar and the
    # filters at 1,400 px.
    list_display = ["endpoint", "status"]
    _extensions: ClassVar[dict[type, AdminExtension]] = {}
    extension_type = SubscriptionAdminExtension
    extension_columns_after = "status"
    # `owner` is nullable, which the changelist's automatic select_related() skips. The page's
    # tenants come in one more query (get_queryset), not by a join: an inner join to the small
    # tenant table let PostgreSQL drive the search from it (a nested loop running the trigram
    # index scan once per tenant: 266 ms instead of 2 ms at 100,000 endpoints when the tenant
    # table's statistics were stale).
    list_select_related = ["owner"]
    list_filter = [tenant_filter("tenant_id"), "is_active", "payload_format"]
    # Searched by `subscription_search` (an id exactly, URL and description by trigram index).
    search_lookup = staticmethod(subscription_search)
    search_fields = ["url", "description", "=id", "=tenant__key"]
    search_help_text = _("An endpoint id, a tenant key, or part of a URL or description.")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Subscription]:
        return super().get_queryset(request).prefetch_related("tenant")

    # Endpoints grow with customers: no count of the whole table on each page, and pages of
    # 50 (each row carries its health figures and chart).
    show_full_result_count = False
    list_per_page = 50
    readonly_fields = [
        "id",
        "public_key",
        "disabled_reason",
        "disabled_at",
        "failing_since",
        "last_success_at",
        "created_at",
        "updated_at",
    ]
    # The secret is shown once, in the message after creation; never in a form or a list. The
    # same for every other write-only value (keys, OAuth2 secret, mTLS key): the API sets them.
    exclude = [
        "secret",
        "previous_secret",
        "previous_secret_expires_at",
        "signing_key",
        "previous_signing_key",
        "oauth2_client_secret",
        "tls_client_key",
    ]
    raw_id_fields = ["owner", "tenant"]
    own_actions = ["rotate_secrets", "enable_selected", "disable_selected"]
    change_form_template = "subscriptions/admin/subscription_change_form.html"
    change_list_template = "subscriptions/admin/subscription_change_list.html"

    # --- What other apps add (SubscriptionAdminExtension) ------------------------------------

    @admin.display(description=_("public key (v1a)"))
    def public_key(self, obj: Subscription) -> str:
        return obj.public_key or "-"

    @admin.display(description=_("endpoint"), ordering="description")
    def endpoint(self, obj: Subscription) -> str:
        # Names and URLs wrap only after '.', '/', '-' or '_' (webhooks_core.wrap).
        whose = format_html(
            '<div class="webhooks-whose">{}{}</div>',
            _("tenant %(key)s") % {"key": obj.tenant_id},
            f" · {obj.owner}" if obj.owner_id else "",
        )
        if not obj.description:
            return format_html(
                '<span title="{}">{}</span>{}', obj.url, breakable(short_url(obj.url)), whose
            )
        return format_html(
            '<strong>{}</strong><br><span class="webhooks-url" title="{}">{}</span>{}',
            breakable(obj.description),
            obj.url,
            breakable(short_url(obj.url)),
            whose,
        )

    def get_urls(self) -> list[URLPattern]:
        return [*(u for ext in self.extensions for u in ext.get_urls(self)), *super().get_urls()]

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict,
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Subscription | None = None,
    ) -> HttpResponse:
        context["extension_links"] = (
            [link for ext in self.extensions for link in ext.object_links(self, request, obj)]
            if obj is not None
            else []
        )
        context["extension_panels"] = (
            [panel for ext in self.extensions for panel in ext.object_panels(self, request, obj)]
            if obj is not None
            else []
        )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # Enabling and disabling go through the services (signals, discarding, the replay
        # offer), so on an existing subscription the flag only changes through the actions.
        # The tenant is fixed at creation, as in the API.
        fields = list(super().get_readonly_fields(request, obj))
        return [*fields, "is_active", "tenant"] if obj is not None else fields

    @admin.action(description=_("Enable selected subscriptions"), permissions=["change"])
    def enable_selected(self, request: HttpRequest, queryset: Any) -> None:
        enabled = 0
        for subscription in queryset.filter(is_active=False):
            # Enabling clears these; the hook may want to know the outage they bound.
            disabled_at, failing_since = subscription.disabled_at, subscription.failing_since
            if services.enable_subscription(subscription):
                enabled += 1
                self.after_enable(
                    request, subscription, disabled_at=disabled_at, failing_since=failing_since
                )
        self.message_user(
            request,
            ngettext("%d subscription enabled.", "%d subscriptions enabled.", enabled) % enabled,
            messages.SUCCESS,
        )

    def after_enable(
        self,
        request: HttpRequest,
        subscription: Subscription,
        *,
        disabled_at: Any,
        failing_since: Any,
    ) -> None:
        """Run after each subscription the admin enabled; asks the extensions (the pipeline
        offers to replay the outage)."""
        enabled = Enabled(self, request, subscription, disabled_at, failing_since)
        for ext in self.extensions:
            ext.after_enable(enabled)

    @admin.action(description=_("Disable selected subscriptions…"), permissions=["change"])
    def disable_selected(self, request: HttpRequest, queryset: Any) -> HttpResponse | None:
        """Asks first: a page lists the active subscriptions selected and what disabling them
        does (the extensions say what waits and will be discarded), with an optional reason.
        Confirmed, it disables them through the service and reports what was done."""
        active = list(queryset.filter(is_active=True))
        if not active:
            self.message_user(
                request, _("The selected subscriptions are already disabled."), messages.INFO
            )
            return None
        if request.POST.get("confirm") != "yes":
            return self.disable_confirmation(request, queryset, active)
        default = f"Disabled in the admin by {request.user}."
        reason = (request.POST.get("reason") or "").strip()[:400] or default
        # One transaction: the extensions' after_disable runs before the subscription_disabled
        # receivers (after commit), so what it reports is what it changed itself.
        with transaction.atomic(using=router.db_for_write(Subscription)):
            disabled = [s for s in active if services.disable_subscription(s, reason)]
            self.message_user(
                request,
                ngettext("%d subscription disabled.", "%d subscriptions disabled.", len(disabled))
                % len(disabled),
                messages.SUCCESS,
            )
            if disabled:
                for ext in self.extensions:
                    ext.after_disable(self, request, disabled, reason)
        return None

    def disable_confirmation(
        self, request: HttpRequest, queryset: Any, active: list[Subscription]
    ) -> HttpResponse:
        """The page that asks before `disable_selected` acts (as Django's delete does)."""
        rows = [
            (
                subscription,
                [
                    line
                    for ext in self.extensions
                    for line in ext.disable_consequences(self, request, subscription)
                ],
            )
            for subscription in active
        ]
        context = {
            **self.admin_site.each_context(request),
            "title": _("Disable subscriptions?"),
            "opts": self.model._meta,
            "rows": rows,
            "already_disabled": queryset.count() - len(active),
            "selected": queryset.values_list("pk", flat=True),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "default_reason": f"Disabled in the admin by {request.user}.",
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "subscriptions/admin/disable_confirmation.html", context)

    @admin.display(description=_("status"), ordering="is_active")
    def status(self, obj: Subscription) -> str:
        if obj.is_active:
            return format_html('<span style="color:#2e7d32">{}</span>', _("active"))
        return format_html(
            '<span style="color:#c62828" title="{}">{}</span>', obj.disabled_reason, _("disabled")
        )

    def save_model(self, request: HttpRequest, obj: Subscription, form: Any, change: bool) -> None:
        if not change and obj.owner_id is None:
            obj.owner_id = request.user.pk  # the admin is for signed-in staff only
        super().save_model(request, obj, form, change)

    def response_add(
        self, request: HttpRequest, obj: Subscription, post_url_continue: str | None = None
    ) -> HttpResponse:
        """The answer to the creating POST shows the new secret, once: not a message, which
        would park it in the messages cookie (or the session) for the next page."""
        if admin.options.IS_POPUP_VAR in request.POST:
            return super().response_add(request, obj, post_url_continue)
        self.message_user(request, _("The subscription was added."), messages.SUCCESS)
        return self.secrets_page(request, [(obj, obj.secret)], _("Subscription added"))

    def secrets_page(
        self,
        request: HttpRequest,
        rows: list[tuple[Subscription, str]],
        title: str | Promise,
        note: str = "",
    ) -> HttpResponse:
        """A page showing `rows` (subscription, new secret) in the answer to the action that
        made them, never cached (`Cache-Control: no-store`)."""
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.model._meta,
            "rows": rows,
            "note": note,
        }
        request.current_app = self.admin_site.name
        response = TemplateResponse(request, "subscriptions/admin/secrets_shown.html", context)
        add_never_cache_headers(response)
        return response

    # --- Deleting: the history stays (services.delete_subscription) ---------------------------

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> tuple:
        """What the confirmation page lists: the endpoints alone. Their deliveries, attempts
        and notices are kept, so deleting needs `delete_subscription` and nothing more, as in
        the API."""
        objs = list(objs)
        names = [format_html("{}: {}", capfirst(self.model._meta.verbose_name), o) for o in objs]
        return names, {self.model._meta.verbose_name_plural: len(objs)}, set(), []

    def delete_model(self, request: HttpRequest, obj: Subscription) -> None:
        services.delete_subscription(obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Subscription]) -> None:
        for subscription in queryset:
            services.delete_subscription(subscription)

    @admin.action(description=_("Rotate the signing secret"), permissions=["change"])
    def rotate_secrets(
        self, request: HttpRequest, queryset: QuerySet[Subscription]
    ) -> HttpResponse | None:
        rotated = [(sub, services.rotate_secret(sub)) for sub in queryset]
        if not rotated:
            return None
        note = ngettext(
            "Rotated the secret of %(count)d subscription; the old secret keeps signing "
            "during the overlap.",
            "Rotated the secrets of %(count)d subscriptions; the old secrets keep signing "
            "during the overlap.",
            len(rotated),
        ) % {"count": len(rotated)}
        # Shown once, in the answer to this action, like the secret of a new subscription;
        # never in a message (a cookie), the session or a log.
        return self.secrets_page(request, rotated, _("New signing secrets"), note)

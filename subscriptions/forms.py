"""Form fields shared by the admin and the portal (which imports this app; never the reverse)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from webhooks_core.conf import webhook_settings

from .headers import HEADER_MASK, mask_headers

HEADERS_HELP = _(
    "One 'Name: value' per line, sent with every delivery, e.g. 'Authorization: Bearer abc'. "
    "Values are write-only: once saved they are never shown again, here, in the API or in the "
    "delivery log, where every custom header value appears as '%(mask)s'. Keep a line as "
    "'Name: %(mask)s' (or 'Name:') to keep its stored value, type a new value to replace it, "
    "delete the line to remove the header. When the URL moves to another host, scheme or "
    "port, type the values again (or delete the lines): stored values never follow it."
) % {"mask": HEADER_MASK}


def destination_rule() -> str:
    """Which endpoint URLs this server accepts, as the settings in force say: `ALLOW_HTTP`
    (plain http:// as well as https://) and `ALLOW_PRIVATE_NETWORKS` (loopback and private
    addresses as well as public ones), read on each call (the URL check is
    `webhooks_core.netguard`). For the forms' help and the portal's add page."""
    http = bool(webhook_settings.ALLOW_HTTP)
    private = bool(webhook_settings.ALLOW_PRIVATE_NETWORKS)
    if http and private:
        return str(
            _(
                "The URL may use HTTPS or plain HTTP, and may point at a private or loopback "
                "address (this server allows both, e.g. for a demo)."
            )
        )
    if http:
        return str(
            _("The URL must be reachable from the internet, over HTTPS or plain HTTP.")
        )
    if private:
        return str(
            _(
                "The URL must use HTTPS; private and loopback addresses are allowed on this "
                "server."
            )
        )
    return str(_("The URL must be reachable from the internet over HTTPS."))


def format_header_lines(headers: dict[str, str]) -> str:
    """`headers` as 'Name: value' lines, as given (callers pass masked values)."""
    return "\n".join(f"{name}: {value}" for name, value in headers.items())


def parse_header_lines(text: str) -> dict[str, str]:
    """'Name: value' lines into a dict, empty lines skipped. A value that is empty or the mask
    becomes `HEADER_MASK`: keep the stored value (the serializer resolves it, or refuses it).

    The name is taken exactly (a space before the colon is an error, as in the API); spaces
    and tabs after the colon are HTTP's optional whitespace (RFC 9110 §5.6.3) and skipped.
    Raises forms.ValidationError naming the line.
    """
    headers: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        if not sep or not name:
            raise forms.ValidationError(
                _("Line %(n)d: write each header as 'Name: value'.") % {"n": number}
            )
        if name != name.strip():
            raise forms.ValidationError(
                _("Line %(n)d: no spaces around the header name.") % {"n": number}
            )
        if name in headers:
            raise forms.ValidationError(
                _("Line %(n)d: the header %(name)r is given twice.") % {"n": number, "name": name}
            )
        value = value.lstrip(" \t")
        headers[name] = value if value and value != HEADER_MASK else HEADER_MASK
    return headers


class HeaderLinesField(forms.CharField):
    """Custom headers as 'Name: value' lines in a textarea; its value is a dict whose kept
    values are `HEADER_MASK`. Its initial value (a dict of stored headers) is shown masked,
    so a stored value never reaches the page."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("strip", False)
        kwargs.setdefault("help_text", HEADERS_HELP)
        attrs = {"rows": 3, "spellcheck": "false", "autocomplete": "off"}
        kwargs.setdefault("widget", forms.Textarea(attrs=attrs))
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, dict):
            # Masked here too, whatever the caller passed as initial: defence in depth.
            return format_header_lines(mask_headers(value))
        return value

    def to_python(self, value: Any) -> dict[str, str]:  # type: ignore[override]
        if isinstance(value, dict):
            return value
        return parse_header_lines(super().to_python(value) or "")

    def has_changed(self, initial: Any, data: Any) -> bool:
        try:
            return self.to_python(data) != mask_headers(initial or {})
        except forms.ValidationError:
            return True

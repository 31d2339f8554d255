"""Model fields whose values are encrypted at rest (`webhooks_core.encryption`).

The database holds Fernet tokens; Python code sees clear text, decrypted when a row is loaded
(`from_db_value`) and encrypted when it is written (`get_prep_value`), so code that reads
`subscription.secret` or `subscription.headers` does not know. Two consequences: these columns
cannot be filtered on (a token differs at every write, so an equality lookup never matches a
value; the empty value is stored as it is, so `=""` still finds "none set"), and a row read
with raw SQL holds tokens until each value goes through its field's `from_db_value` (as the
pipeline's claim does, `deliveries.services.states`).
"""

from __future__ import annotations

from typing import Any

from django.db import models

from .encryption import decrypt, encrypt


class EncryptedTextField(models.TextField):
    """Text stored as one Fernet token; the empty string and None are stored as they are."""

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt(str(value))

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value is None or value == "":
            return value
        return decrypt(value)


class EncryptedHeadersField(models.JSONField):
    """A JSON object of header name to value, stored with every value a Fernet token and the
    names in clear (which headers an endpoint gets is configuration, not a credential)."""

    def get_prep_value(self, value: Any) -> Any:
        if isinstance(value, dict):
            value = {name: encrypt(str(item)) for name, item in value.items()}
        return super().get_prep_value(value)

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        value = super().from_db_value(value, expression, connection)
        if isinstance(value, dict):
            return {name: decrypt(item) for name, item in value.items()}
        return value

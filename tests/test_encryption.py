"""Secrets at rest: what the database holds is a Fernet token, the models read clear text, keys
rotate (`webhooks_rotate_encryption_key`), the deploy check asks for a key of its own, and the
migrations encrypt existing rows and decrypt them again on the way back (both databases)."""

from __future__ import annotations

import json

import pytest
from cryptography.fernet import Fernet, MultiFernet
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import override_settings

from subscriptions.checks import check_encryption_keys, check_webhooks_settings
from subscriptions.models import Subscription, Tenant
from tests.factories import make_subscription
from tests.migrating import migrate, migrate_to_latest
from webhooks_core import encryption
from webhooks_core.encryption import UndecryptableValue, decrypt

KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()
HEADER_VALUE = "Bearer header-credential-123"
CLIENT_SECRET = "oauth-client-secret-456"


def stored(pk, *columns: str) -> tuple:
    """The columns as the database holds them, read past the ORM's fields."""
    table = Subscription._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(columns)} FROM {table} WHERE id = %s", [pk.hex])
        row = cursor.fetchone()
        if row is None:  # PostgreSQL keeps uuid as uuid, SQLite as hex text
            cursor.execute(f"SELECT {', '.join(columns)} FROM {table} WHERE id = %s", [pk])
            row = cursor.fetchone()
    return row


def as_dict(value) -> dict:
    return value if isinstance(value, dict) else json.loads(value)


def keys(*fernet_keys: str):
    from django.conf import settings

    return override_settings(WEBHOOKS={**settings.WEBHOOKS, "ENCRYPTION_KEYS": list(fernet_keys)})


@pytest.mark.django_db
def test_secrets_are_tokens_in_the_database_and_clear_text_in_python():
    sub = make_subscription(
        "http://127.0.0.1:9/",
        headers={"Authorization": HEADER_VALUE},
        signature_scheme="v1 v1a",
        oauth2_token_url="http://127.0.0.1:9/token",
        oauth2_client_id="client",
        oauth2_client_secret=CLIENT_SECRET,
        tls_client_key="-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n",
    )
    secret, headers, signing_key, client_secret, tls_key = stored(
        sub.pk, "secret", "headers", "signing_key", "oauth2_client_secret", "tls_client_key"
    )
    for token, clear in [
        (secret, sub.secret),
        (signing_key, sub.signing_key),
        (client_secret, CLIENT_SECRET),
        (tls_key, sub.tls_client_key),
        (as_dict(headers)["Authorization"], HEADER_VALUE),
    ]:
        assert clear not in token
        assert decrypt(token) == clear
    assert list(as_dict(headers)) == ["Authorization"]  # names stay readable

    fresh = Subscription.objects.get(pk=sub.pk)
    assert fresh.headers == {"Authorization": HEADER_VALUE}
    assert fresh.secret.startswith("whsec_") and fresh.signing_key.startswith("whsk_")
    assert fresh.oauth2_client_secret == CLIENT_SECRET
    assert Subscription.objects.filter(previous_secret="").count() == 1  # empty stays empty


@pytest.mark.django_db
def test_a_value_no_key_opens_is_a_clear_error():
    with keys(KEY_A):
        sub = make_subscription("http://127.0.0.1:9/", headers={"X-Key": "v"})
    with keys(KEY_B), pytest.raises(UndecryptableValue, match="ENCRYPTION_KEYS"):
        Subscription.objects.get(pk=sub.pk)


@pytest.mark.django_db
def test_a_token_is_opened_once_per_process_and_not_after_its_key_is_removed(monkeypatch):
    # Every delivery loads its subscription's secrets: the second load of the same token costs
    # no Fernet decryption, and the cache never opens a token the configured keys cannot.
    opened = []
    real = MultiFernet.decrypt

    def counting(self, token, ttl=None):
        opened.append(token)
        return real(self, token, ttl)

    with keys(KEY_A):
        sub = make_subscription("http://127.0.0.1:9/")
        (token,) = stored(sub.pk, "secret")
        encryption._decrypted.clear()
        monkeypatch.setattr(MultiFernet, "decrypt", counting)
        assert decrypt(token) == decrypt(token) == sub.secret
        assert Subscription.objects.get(pk=sub.pk).secret == sub.secret
        assert len(opened) == 1
    with keys(KEY_B), pytest.raises(UndecryptableValue):
        decrypt(token)
    with keys(KEY_B, KEY_A):
        assert decrypt(token) == sub.secret


@pytest.mark.django_db
def test_rotation_command_moves_every_row_to_the_first_key():
    with keys(KEY_A):
        subs = [
            make_subscription(f"http://127.0.0.1:9/{n}", headers={"X-Key": f"value-{n}"})
            for n in range(5)
        ]
        secrets = {sub.pk: sub.secret for sub in subs}
        updated = dict(Subscription.objects.values_list("pk", "updated_at"))
    with keys(KEY_B, KEY_A):
        # Before the command the rows still open with the old key only.
        assert Fernet(KEY_A).decrypt(stored(subs[0].pk, "secret")[0].encode())
        out = call_command_output("webhooks_rotate_encryption_key", "--batch-size", "2")
        assert "5 subscriptions" in out
    with keys(KEY_B):  # the old key removed: everything still opens
        for sub in Subscription.objects.all():
            assert sub.secret == secrets[sub.pk]
            assert sub.headers == {"X-Key": f"value-{sub.url.rsplit('/', 1)[1]}"}
        assert dict(Subscription.objects.values_list("pk", "updated_at")) == updated
    with keys(KEY_A), pytest.raises(UndecryptableValue):
        list(Subscription.objects.all())


@pytest.mark.django_db
def test_rotation_command_refuses_when_a_key_is_missing():
    with keys(KEY_A):
        make_subscription("http://127.0.0.1:9/")
    with keys(KEY_B), pytest.raises(CommandError, match="cannot be decrypted"):
        call_command("webhooks_rotate_encryption_key")


def call_command_output(*args: str) -> str:
    import io

    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_deploy_check_errors_without_a_key_of_its_own(settings):
    settings.WEBHOOKS = {k: v for k, v in settings.WEBHOOKS.items() if k != "ENCRYPTION_KEYS"}
    assert [m.id for m in check_encryption_keys()] == ["webhooks.E010"]
    settings.WEBHOOKS = {**settings.WEBHOOKS, "ENCRYPTION_KEYS": [KEY_A]}
    assert check_encryption_keys() == []
    settings.WEBHOOKS = {**settings.WEBHOOKS, "ENCRYPTION_KEYS": f"{KEY_B},{KEY_A}"}
    assert check_encryption_keys() == []


def test_a_malformed_key_is_named_without_its_value(settings):
    settings.WEBHOOKS = {**settings.WEBHOOKS, "ENCRYPTION_KEYS": [KEY_A, "not-a-key-xyz"]}
    errors = [m for m in check_webhooks_settings() if m.id == "webhooks.E007"]
    assert len(errors) == 1
    assert "[1] is not a Fernet key" in errors[0].msg
    assert "not-a-key-xyz" not in errors[0].msg


BEFORE = [("webhook_subscriptions", "0002_tenants")]


@pytest.mark.django_db(transaction=True)
def test_migrations_encrypt_existing_rows_and_decrypt_them_back():
    plain_secret = "whsec_" + "A" * 43 + "="
    # The tenants migration's data step made the default tenant, but a transactional test
    # before this one may have flushed it; the older schema cannot make it with today's model.
    Tenant.objects.default()
    try:
        with keys(KEY_A):
            old = migrate(BEFORE)
            Old = old.get_model("webhook_subscriptions", "Subscription")
            sub = Old.objects.create(
                url="http://127.0.0.1:9/",
                event_types=["*"],
                secret=plain_secret,
                previous_secret="whsec_" + "B" * 43 + "=",
                headers={"Authorization": HEADER_VALUE, "X-Empty": ""},
            )
            bare = Old.objects.create(url="http://127.0.0.1:9/b", event_types=["*"], secret="")

            migrate_to_latest()
            secret, previous, headers = stored(sub.pk, "secret", "previous_secret", "headers")
            assert plain_secret not in secret and decrypt(secret) == plain_secret
            assert decrypt(previous) == "whsec_" + "B" * 43 + "="
            assert HEADER_VALUE not in json.dumps(as_dict(headers))
            fresh = Subscription.objects.get(pk=sub.pk)
            assert fresh.secret == plain_secret
            assert fresh.headers == {"Authorization": HEADER_VALUE, "X-Empty": ""}
            assert fresh.signature_scheme == "v1" and fresh.signing_key == ""
            assert stored(bare.pk, "secret", "previous_secret") == ("", "")

            back = migrate(BEFORE)
            assert stored(sub.pk, "secret", "previous_secret", "headers")[:2] == (
                plain_secret,
                "whsec_" + "B" * 43 + "=",
            )
            assert as_dict(stored(sub.pk, "headers")[0]) == {
                "Authorization": HEADER_VALUE,
                "X-Empty": "",
            }
            assert back.get_model("webhook_subscriptions", "Subscription").objects.count() == 2
    finally:
        migrate_to_latest()

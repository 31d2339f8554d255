"""Encrypt the existing signing secrets and custom header values (`webhooks_core.encryption`),
and decrypt them when migrating back. The columns are still declared as clear fields in this
migration's state, so the values are read and written exactly as stored; 0005 declares the
encrypted fields that do the same on every later read and write."""

from django.db import migrations

from webhooks_core.encryption import decrypt, encrypt

BATCH = 500


def _convert(apps, schema_editor, convert):
    Subscription = apps.get_model("webhook_subscriptions", "Subscription")
    rows = Subscription.objects.using(schema_editor.connection.alias).order_by("pk")
    last = None
    while True:
        batch = rows.filter(pk__gt=last) if last is not None else rows
        page = list(batch.values_list("pk", "secret", "previous_secret", "headers")[:BATCH])
        if not page:
            return
        for pk, secret, previous, headers in page:
            rows.filter(pk=pk).update(
                secret=convert(secret) if secret else secret,
                previous_secret=convert(previous) if previous else previous,
                headers={name: convert(str(value)) for name, value in (headers or {}).items()},
            )
        last = page[-1][0]


def encrypt_rows(apps, schema_editor):
    _convert(apps, schema_editor, encrypt)


def decrypt_rows(apps, schema_editor):
    _convert(apps, schema_editor, decrypt)


class Migration(migrations.Migration):
    dependencies = [("webhook_subscriptions", "0003_secret_columns_widen")]

    operations = [migrations.RunPython(encrypt_rows, decrypt_rows, elidable=False)]

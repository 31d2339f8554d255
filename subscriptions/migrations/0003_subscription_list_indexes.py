"""Indexes for the subscription lists: newest first across tenants, and (PostgreSQL only)
trigram indexes for substring search on URL and description (subscriptions/search.py)."""

from django.db import migrations, models
from django.db.models.functions import Upper

TRIGRAM_COLUMNS = {"url": "webhooks_sub_url_trgm", "description": "webhooks_sub_desc_trgm"}


def trigram_indexes():
    # Imported here: django.contrib.postgres needs psycopg, which a SQLite install may lack.
    from django.contrib.postgres.indexes import GinIndex, OpClass

    # On `UPPER(col)`: the expression Django's `icontains` compiles to on PostgreSQL.
    return [
        GinIndex(OpClass(Upper(column), name="gin_trgm_ops"), name=name)
        for column, name in TRIGRAM_COLUMNS.items()
    ]


def add_trigram_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    subscription = apps.get_model("webhook_subscriptions", "Subscription")
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for index in trigram_indexes():
        schema_editor.add_index(subscription, index)


def remove_trigram_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    subscription = apps.get_model("webhook_subscriptions", "Subscription")
    for index in trigram_indexes():
        schema_editor.remove_index(subscription, index)


class Migration(migrations.Migration):
    dependencies = [
        ("webhook_subscriptions", "0002_tenants"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="subscription",
            index=models.Index(fields=["-created_at"], name="webhooks_sub_created_idx"),
        ),
        migrations.RunPython(add_trigram_indexes, remove_trigram_indexes, elidable=False),
    ]

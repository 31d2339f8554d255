"""Indexes for the subscription lists: newest first across tenants, and (PostgreSQL only)
trigram indexes for substring search on URL and description (subscriptions/search.py)."""

from django.db import migrations, models

# On `UPPER(col)`: the expression Django's `icontains` compiles to on PostgreSQL, so the
# admin's search (`UPPER(url::text) LIKE UPPER('%...%')`) is answered by the index. Written as
# SQL: django.contrib.postgres' OpClass in an index needs that app installed, which hosts of
# this app need not have.
TRIGRAM_INDEXES = {"webhooks_sub_url_trgm": "url", "webhooks_sub_desc_trgm": "description"}


def add_trigram_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return  # SQLite: the search scans, as small installations may
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, column in TRIGRAM_INDEXES.items():
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON webhooks_subscription "
            f"USING gin (UPPER({column}) gin_trgm_ops)"
        )


def remove_trigram_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in TRIGRAM_INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [
        ("webhook_subscriptions", "0005_trust_pack_fields"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="subscription",
            index=models.Index(fields=["-created_at"], name="webhooks_sub_created_idx"),
        ),
        migrations.RunPython(add_trigram_indexes, remove_trigram_indexes, elidable=False),
    ]

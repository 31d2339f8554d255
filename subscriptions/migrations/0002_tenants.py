"""Tenants: the Tenant table, the default tenant, and every subscription carried into it."""

import django.core.validators
import django.db.models.deletion
import subscriptions.models
from django.db import migrations, models


def create_default_tenant(apps, schema_editor):
    # Existing subscriptions belong to the default tenant; its row must exist before the
    # column that points to it is added.
    key = subscriptions.models.default_tenant_key()
    Tenant = apps.get_model("webhook_subscriptions", "Tenant")
    Tenant.objects.using(schema_editor.connection.alias).get_or_create(
        key=key, defaults={"name": key}
    )


class Migration(migrations.Migration):

    dependencies = [
        ("webhook_subscriptions", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="Tenant",
            fields=[
                ("key", models.CharField(help_text="Chosen by the host, e.g. 'org_42': letters, digits, '.', '_', ':', '-'.", max_length=255, primary_key=True, serialize=False, validators=[django.core.validators.RegexValidator(subscriptions.models.TENANT_KEY_RE, "A tenant key is 1 to 255 letters, digits, '.', '_', ':' or '-'.", code="invalid_tenant_key")], verbose_name="key")),
                ("name", models.CharField(blank=True, max_length=255, verbose_name="name")),
                ("contact_email", models.EmailField(blank=True, help_text="Where notices about this tenant's endpoints go (disabled endpoints).", max_length=254, verbose_name="contact email")),
                ("max_subscriptions", models.PositiveIntegerField(blank=True, help_text="Most subscriptions of this tenant; empty for the default.", null=True, verbose_name="max subscriptions")),
                ("max_in_flight", models.PositiveIntegerField(blank=True, help_text="Most deliveries of this tenant in flight at once, all endpoints together; empty for the default.", null=True, verbose_name="max deliveries in flight")),
                ("created_at", models.DateTimeField(auto_now_add=True, verbose_name="created")),
            ],
            options={
                "verbose_name": "tenant",
                "verbose_name_plural": "tenants",
                "db_table": "webhooks_tenant",
                "ordering": ["key"],
            },
        ),
        # Reversing drops the table just after, so there is nothing to undo here.
        migrations.RunPython(create_default_tenant, migrations.RunPython.noop, elidable=False),
        # The default fills the column of existing rows with the default tenant's key.
        migrations.AddField(
            model_name="subscription",
            name="tenant",
            field=models.ForeignKey(db_index=False, default=subscriptions.models.default_tenant, help_text="The customer account this endpoint belongs to; it receives its events only.", on_delete=django.db.models.deletion.PROTECT, related_name="subscriptions", to="webhook_subscriptions.tenant", verbose_name="tenant"),
        ),
        migrations.AddIndex(
            model_name="subscription",
            index=models.Index(fields=["tenant", "-created_at"], name="webhooks_sub_tenant_idx"),
        ),
    ]

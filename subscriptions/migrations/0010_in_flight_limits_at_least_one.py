"""In-flight limits are at least 1. A stored 0 held a tenant's deliveries for good (and meant
"the default" on a subscription): both become empty, the default."""

import django.core.validators
from django.db import migrations, models


def zero_limits_to_default(apps, schema_editor):
    db = schema_editor.connection.alias
    apps.get_model("webhook_subscriptions", "Tenant").objects.using(db).filter(
        max_in_flight=0
    ).update(max_in_flight=None)
    apps.get_model("webhook_subscriptions", "Subscription").objects.using(db).filter(
        rate_limit=0
    ).update(rate_limit=None)


class Migration(migrations.Migration):
    dependencies = [
        ("webhook_subscriptions", "0009_exact_text_validators"),
    ]

    operations = [
        migrations.RunPython(zero_limits_to_default, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="subscription",
            name="rate_limit",
            field=models.PositiveIntegerField(
                blank=True,
                help_text="Most deliveries in flight at once to this endpoint; at least 1. Empty for the default (MAX_IN_FLIGHT; no cap when that is unset). To pause deliveries, disable the endpoint.",
                null=True,
                validators=[
                    django.core.validators.MinValueValidator(
                        1,
                        "At least 1. Leave it empty for the default; to pause deliveries, disable the endpoint.",
                    )
                ],
                verbose_name="max deliveries in flight",
            ),
        ),
        migrations.AlterField(
            model_name="tenant",
            name="max_in_flight",
            field=models.PositiveIntegerField(
                blank=True,
                help_text="Most deliveries of this tenant in flight at once, all endpoints together; at least 1. Empty for the default (TENANT_MAX_IN_FLIGHT; no cap when that is unset). To pause deliveries, disable the endpoints.",
                null=True,
                validators=[
                    django.core.validators.MinValueValidator(
                        1,
                        "At least 1. Leave it empty for the default; to pause deliveries, disable the endpoint.",
                    )
                ],
                verbose_name="max deliveries in flight",
            ),
        ),
    ]

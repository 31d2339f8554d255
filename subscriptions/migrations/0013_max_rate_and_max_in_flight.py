"""Endpoint and tenant `max_rate` (events per second), and the in-flight cap named for what it
is: the model field `rate_limit` becomes `max_in_flight`, its column keeps the name
`rate_limit` (no table rewrite, and code of the previous release still reads it)."""

import django.core.validators
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('webhook_subscriptions', '0012_subscription_filter_and_channels'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RenameField(
                    model_name="subscription", old_name="rate_limit", new_name="max_in_flight"
                ),
                migrations.AlterField(
                    model_name="subscription",
                    name="max_in_flight",
                    field=models.PositiveIntegerField(
                        blank=True,
                        db_column="rate_limit",
                        help_text=(
                            "Most deliveries in flight at once to this endpoint; at least 1. "
                            "Empty for the default (MAX_IN_FLIGHT; no cap when that is unset). "
                            "To pause deliveries, disable the endpoint."
                        ),
                        null=True,
                        validators=[
                            django.core.validators.MinValueValidator(
                                1,
                                "At least 1. Leave it empty for the default; to pause "
                                "deliveries, disable the endpoint.",
                            )
                        ],
                        verbose_name="max deliveries in flight",
                    ),
                ),
            ],
            database_operations=[],
        ),
        migrations.AddField(
            model_name='subscription',
            name='max_rate',
            field=models.FloatField(blank=True, help_text="Most events per second to this endpoint, across all workers (a burst of at most one second's worth); over it deliveries wait without spending an attempt. Empty for the tenant's default, else MAX_RATE (no rate when that is unset).", null=True, validators=[django.core.validators.MinValueValidator(0.01, 'At least 0.01 (one event every 100 s). Leave it empty for the default.'), django.core.validators.MaxValueValidator(10000.0)], verbose_name='max rate (events/s)'),
        ),
        migrations.AddField(
            model_name='tenant',
            name='max_rate',
            field=models.FloatField(blank=True, help_text='Most events per second to each endpoint of this tenant that sets no rate of its own. Empty for the default (MAX_RATE; no rate when that is unset).', null=True, validators=[django.core.validators.MinValueValidator(0.01, 'At least 0.01 (one event every 100 s). Leave it empty for the default.'), django.core.validators.MaxValueValidator(10000.0)], verbose_name='default max rate (events/s)'),
        ),
    ]

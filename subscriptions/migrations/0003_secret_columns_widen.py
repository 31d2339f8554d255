"""Room for encrypted values: the secret columns become text (a Fernet token of a 64-byte
secret is about 240 characters). Still clear text here; 0004 encrypts the rows."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("webhook_subscriptions", "0002_tenants")]

    operations = [
        migrations.AlterField(
            model_name="subscription",
            name="secret",
            field=models.TextField(verbose_name="secret"),
        ),
        migrations.AlterField(
            model_name="subscription",
            name="previous_secret",
            field=models.TextField(blank=True, verbose_name="previous secret"),
        ),
    ]

"""The tenant migrations carry existing rows into the default tenant, and reverse cleanly."""

from __future__ import annotations

import pytest

from tests.migrating import migrate, migrate_to_latest

BEFORE = [("webhook_subscriptions", "0001_initial"), ("deliveries", "0002_attempt_error_kinds")]
AFTER = [("webhook_subscriptions", "0002_tenants"), ("deliveries", "0003_event_tenant")]


@pytest.mark.django_db(transaction=True)
def test_existing_rows_move_into_the_default_tenant_and_back(settings):
    settings.WEBHOOKS = {**settings.WEBHOOKS, "DEFAULT_TENANT": "acme"}
    try:
        old = migrate(BEFORE)
        sub = old.get_model("webhook_subscriptions", "Subscription").objects.create(
            url="http://127.0.0.1:9/", event_types=["*"]
        )
        Event = old.get_model("deliveries", "Event")
        Event.objects.create(type="a.b", data={}, idempotency_key="k1")
        Event.objects.create(type="a.b", data={})

        new = migrate(AFTER)
        Tenant = new.get_model("webhook_subscriptions", "Tenant")
        assert list(Tenant.objects.values_list("key", "name")) == [("acme", "acme")]
        assert (
            new.get_model("webhook_subscriptions", "Subscription").objects.get(pk=sub.pk).tenant_id
            == "acme"
        )
        events = new.get_model("deliveries", "Event").objects
        assert set(events.values_list("tenant_id", "broadcast", "body_hash")) == {
            ("acme", False, "")
        }
        # Keys are now unique per tenant: another tenant may use "k1".
        Tenant.objects.create(key="other", name="other")
        events.create(type="a.b", data={}, idempotency_key="k1", tenant_id="other")
        events.filter(tenant_id="other").delete()

        back = migrate(BEFORE)
        assert back.get_model("deliveries", "Event").objects.count() == 2
        assert back.get_model("webhook_subscriptions", "Subscription").objects.count() == 1
    finally:
        migrate_to_latest()

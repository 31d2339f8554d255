"""A host's database routers: the pipeline reads the rows it works on where it writes them
(`router.db_for_write`), so a lagging read replica loses nothing; both apps may live on a
non-default alias; a router that splits them is refused by a system check."""

from __future__ import annotations

import pytest
from django.db import connections

from deliveries.checks import check_database_routing
from deliveries.models import Delivery, DeliveryAttempt, DeliveryStatus, Event
from deliveries.services import attempt_delivery, publish_event
from subscriptions.models import Subscription
from tests.factories import make_subscription

BOTH = ["default", "replica"]
PIPELINE_APPS = {"webhook_subscriptions", "deliveries"}  # the apps' labels


class LaggingReplicaRouter:
    """Reads go to "replica", a copy that never caught up (it has the schema, none of the rows);
    writes go to "default"."""

    def db_for_read(self, model, **hints):
        return "replica"

    def db_for_write(self, model, **hints):
        return "default"

    def allow_relation(self, obj1, obj2, **hints):
        return True

    def allow_migrate(self, db, app_label, **hints):
        return True


class PipelineElsewhereRouter:
    """Both apps on the "replica" alias (here: a second database of their own), everything
    else on "default"."""

    def _route(self, model, **hints):
        return "replica" if model._meta.app_label in PIPELINE_APPS else None

    db_for_read = db_for_write = _route

    def allow_relation(self, obj1, obj2, **hints):
        return True

    def allow_migrate(self, db, app_label, **hints):
        return True


class SplittingRouter(PipelineElsewhereRouter):
    """Deliveries on one alias, subscriptions on another: the claim cannot join them."""

    def _route(self, model, **hints):
        return "replica" if model._meta.app_label == "deliveries" else "default"

    db_for_read = db_for_write = _route


ROUTERS = "tests.test_routing."


@pytest.mark.django_db(databases=BOTH)
def test_a_lagging_replica_loses_no_subscription_and_no_delivery(
    settings, receiver, django_capture_on_commit_callbacks
):
    settings.DATABASE_ROUTERS = [ROUTERS + "LaggingReplicaRouter"]
    subscription = make_subscription(receiver.url("/fresh"))  # written a moment ago
    assert not Subscription.objects.exists()  # the replica does not have it yet

    with django_capture_on_commit_callbacks(execute=True):
        publication = publish_event("order.created", {"n": 1})

    assert publication.deliveries == 1
    delivery = Delivery.objects.using("default").get(event_id=publication.event.pk)
    assert delivery.subscription_id == subscription.pk
    assert attempt_delivery(delivery.pk, 1).action == "done"
    assert receiver.requests_to("/fresh")
    delivery.refresh_from_db(using="default")
    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert DeliveryAttempt.objects.using("default").filter(delivery=delivery).count() == 1


@pytest.mark.django_db(databases=BOTH)
def test_both_apps_on_a_non_default_alias_work(
    settings, receiver, django_capture_on_commit_callbacks
):
    settings.DATABASE_ROUTERS = [ROUTERS + "PipelineElsewhereRouter"]
    assert check_database_routing() == []
    make_subscription(receiver.url("/elsewhere"))

    with django_capture_on_commit_callbacks(execute=True, using="replica"):
        publication = publish_event("order.created", {"n": 1})

    assert publication.deliveries == 1
    delivery = Delivery.objects.get(event_id=publication.event.pk)
    assert attempt_delivery(delivery.pk, 1).action == "done"
    assert receiver.requests_to("/elsewhere")
    assert Delivery.objects.get(pk=delivery.pk).status == DeliveryStatus.SUCCEEDED
    # Every row is on the pipeline's alias, none on the default one.
    for model in (Subscription, Event, Delivery, DeliveryAttempt):
        assert model.objects.using("replica").exists(), model
        assert not model.objects.using("default").exists(), model
    assert connections["replica"].vendor == connections["default"].vendor


def test_a_router_that_splits_the_pipeline_is_refused(settings):
    settings.DATABASE_ROUTERS = [ROUTERS + "SplittingRouter"]
    errors = check_database_routing()
    assert [e.id for e in errors] == ["webhooks.E031"]
    assert "deliveries.Delivery" in errors[0].msg and "subscriptions.Subscription" in errors[0].msg
    settings.DATABASE_ROUTERS = []
    assert check_database_routing() == []

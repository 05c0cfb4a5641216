"""A real Celery worker (not eager mode) sends what the outbox holds, once."""

import pytest
from django.contrib.auth import get_user_model

from notifications.models import Delivery, DeliveryStatus, Notification
from notifications.services import notify
from notifications.tasks import deliveries_dispatch_task

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker(request):
    try:
        return request.getfixturevalue("celery_worker")
    except pytest.FixtureLookupError:
        pytest.skip("needs the tests.celery_utils plugin (make test loads it)")


def _sent(key: str) -> bool:
    return Delivery.objects.filter(notification__dedupe_key=key, status=DeliveryStatus.SENT).exists()


def test_worker_dispatches_the_outbox_once(worker):
    user = get_user_model().objects.create(username="worker_target")
    notify(recipients=[user], kind="reminder", title="请完成晨检", dedupe_key="worker:first")

    deliveries_dispatch_task.delay()
    deliveries_dispatch_task.delay()  # a duplicate run (two beats) finds nothing to claim
    worker.wait_for(lambda: _sent("worker:first"), what="the first delivery to be sent")

    # A later notification goes out on the next tick; the first is not sent again.
    notify(recipients=[user], kind="reminder", title="请完成午检", dedupe_key="worker:second")
    deliveries_dispatch_task.delay()
    worker.wait_for(lambda: _sent("worker:second"), what="the second delivery to be sent")

    assert list(Delivery.objects.order_by("id").values_list("status", "attempts")) == [
        (DeliveryStatus.SENT, 1),
        (DeliveryStatus.SENT, 1),
    ]
    assert Notification.objects.filter(delivered_at__isnull=True).count() == 0

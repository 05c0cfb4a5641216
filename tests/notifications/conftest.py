import pytest
import responses
from django.contrib.auth import get_user_model


@pytest.fixture(autouse=True)
def http():
    """Every test runs with HTTP mocked: a webhook call nobody registered fails the send
    (ConnectionError), it never reaches the network."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def make_user(db):
    counter = iter(range(1, 10**6))

    def make(**fields):
        n = next(counter)
        fields.setdefault("username", f"notif_user_{n}")
        fields.setdefault("email", f"user{n}@example.edu.cn")
        return get_user_model().objects.create(**fields)

    return make


@pytest.fixture
def alice(make_user):
    return make_user(username="alice")


@pytest.fixture
def bob(make_user):
    return make_user(username="bob")

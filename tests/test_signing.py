"""Signatures against the Standard Webhooks test vector and the reference library."""

import json
from datetime import UTC

import pytest
from standardwebhooks import Webhook

from deliveries.signing import signature, signature_header
from subscriptions.secrets import generate_secret, secret_key, validate_secret

# The vector published with the Standard Webhooks specification and its reference libraries.
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TS = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIG = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_signature_matches_the_spec_vector():
    assert signature(VECTOR_SECRET, VECTOR_ID, VECTOR_TS, VECTOR_BODY) == VECTOR_SIG


def test_reference_library_verifies_our_signature():
    import time

    secret = generate_secret()
    body = json.dumps({"type": "order.created", "data": {"id": 1}}).encode()
    ts = int(time.time())
    headers = {
        "webhook-id": "evt_1",
        "webhook-timestamp": str(ts),
        "webhook-signature": signature_header([secret], "evt_1", ts, body),
    }
    assert Webhook(secret).verify(body, headers) == {"type": "order.created", "data": {"id": 1}}


def test_reference_library_signs_like_us():
    from datetime import datetime

    ours = signature(VECTOR_SECRET, VECTOR_ID, VECTOR_TS, VECTOR_BODY)
    theirs = Webhook(VECTOR_SECRET).sign(
        VECTOR_ID, datetime.fromtimestamp(VECTOR_TS, tz=UTC), VECTOR_BODY.decode()
    )
    assert ours == theirs


def test_header_carries_one_entry_per_secret():
    a, b = generate_secret(), generate_secret()
    header = signature_header([a, b], "id", 1, b"{}")
    assert header.split(" ") == [signature(a, "id", 1, b"{}"), signature(b, "id", 1, b"{}")]


def test_generated_secrets_are_random_and_well_formed():
    secrets = {generate_secret() for _ in range(50)}
    assert len(secrets) == 50
    for secret in secrets:
        validate_secret(secret)
        assert len(secret_key(secret)) == 32


@pytest.mark.parametrize("bad", ["nope", "whsec_!!!", "whsec_" + "QUJD" * 2])
def test_malformed_or_weak_secrets_are_refused(bad):
    with pytest.raises(ValueError):
        validate_secret(bad)

"""Webhooks to a real HTTP receiver, after the Standard Webhooks specification: signed so
the reference library (``standardwebhooks``) verifies them and refuses a replay or a
tampered body; secrets rotated with a window in which both sign; retried on a jittered
schedule under one webhook-id until dead, which shows; private targets refused; recorded and
replayable; and the events feed a partner catches up from."""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import json
import random
import shutil
import socket
import sqlite3
import ssl
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import alembic.command
import pytest
from click.testing import CliRunner
from sqlalchemy import select
from standardwebhooks import Webhook, WebhookVerificationError

from tenure.cli import main
from tenure.core import clock
from tenure.core.migrate import alembic_config
from tenure.core.models import OutboxEntry
from tenure.core.plugins import load_plugins
from tenure.core.services.webhook_targets import address_refusal
from tenure.core.services.webhooks import retry_delay
from tenure.core.settings import Settings, SettingsError
from tenure.testing import TenureHarness, pk_of
from tests.core.helpers import ERRORS, create_customer, record_order
from tests.support.receivers import Received, http_receiver

SUBSCRIBE = f"""mutation($input: CreateWebhookSubscriptionInput!) {{
  createWebhookSubscription(input: $input) {{ subscription {{ id eventTypes }} secret {ERRORS} }}
}}"""
ROTATE = f"""mutation($input: RotateWebhookSecretInput!) {{
  rotateWebhookSecret(input: $input) {{ subscription {{ id previousSecretsExpireAt }} secret {ERRORS} }}
}}"""
DELIVERIES = """query($id: ID!) { webhookDeliveries(subscriptionId: $id, first: 10) {
  nodes { id eventId webhookId attempt statusCode ok error nextAttemptAt dead } } }"""
HEALTH = """{ webhookSubscriptions { id previousSecretsExpireAt
  health { lastAttemptAt lastSuccessAt lastError nextAttemptAt deadDeliveries } } }"""


async def subscribe(tenure: TenureHarness, url: str, event_types: list[str] | None = None) -> tuple[str, str]:
    """Subscribe ``url``; returns the subscription's id and its secret."""
    answer = (await tenure.ok(SUBSCRIBE, {"input": {"url": url, "eventTypes": event_types or []}}))
    created = answer["createWebhookSubscription"]
    assert created["userErrors"] == []
    return created["subscription"]["id"], created["secret"]


def signed_by(secret: str, request: Received) -> bool:
    """The delivery carries a signature by ``secret``, computed by the reference library at
    the delivery's own timestamp (frozen-clock tests, whose time the library's verify would
    call old)."""
    sent_at = datetime.fromtimestamp(int(request.headers["webhook-timestamp"]), UTC)
    expected = Webhook(secret).sign(request.headers["webhook-id"], sent_at, request.body.decode())
    return expected in request.headers["webhook-signature"].split(" ")


async def outbox_available_at(tenure: TenureHarness) -> datetime:
    async with tenure.db.reader() as session:
        found = await session.scalar(select(OutboxEntry.available_at).where(OutboxEntry.job == "core.deliver_webhook"))
    assert found is not None
    return clock.as_utc(found)


async def test_a_delivery_verifies_with_the_reference_library_and_a_replay_or_tampering_does_not(
    tenure: TenureHarness,
) -> None:
    with http_receiver() as receiver:
        _, secret = await subscribe(tenure, receiver.url, ["customer.created"])
        assert secret.startswith("whsec_") and len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
        cid = await create_customer(tenure, "Verified")
        assert await tenure.run_jobs() == {"done": 1}
        (delivery,) = receiver.requests
        event = Webhook(secret).verify(delivery.body, delivery.headers)
        assert event["type"] == "customer.created" and event["customerId"] == pk_of(cid)
        assert delivery.headers["webhook-id"] == f"evt_{event['id']}"
        assert delivery.headers["x-tenure-event-type"] == "customer.created"
        assert "x-tenure-signature" not in delivery.headers  # the body-only signature is gone

        tampered = delivery.body.replace(b'"Verified"', b'"Mallory"')
        assert tampered != delivery.body
        with pytest.raises(WebhookVerificationError, match="No matching signature"):
            Webhook(secret).verify(tampered, delivery.headers)
        with pytest.raises(WebhookVerificationError, match="No matching signature"):
            Webhook(secret).verify(delivery.body, {**delivery.headers, "webhook-id": "evt_999999"})
        _, other_secret = await subscribe(tenure, receiver.url, ["nothing.*"])
        with pytest.raises(WebhookVerificationError, match="No matching signature"):
            Webhook(other_secret).verify(delivery.body, delivery.headers)

        # A delivery captured ten minutes ago and sent again now: refused for its age, and
        # giving it a fresh timestamp breaks its signature, which covers the timestamp.
        with clock.use_clock(clock.FrozenClock(datetime.now(UTC) - timedelta(minutes=10))):
            await create_customer(tenure, "Captured")
            assert await tenure.run_jobs() == {"done": 1}
        captured = receiver.requests[1]
        with pytest.raises(WebhookVerificationError, match="too old"):
            Webhook(secret).verify(captured.body, captured.headers)
        fresh = {**captured.headers, "webhook-timestamp": str(int(datetime.now(UTC).timestamp()))}
        with pytest.raises(WebhookVerificationError, match="No matching signature"):
            Webhook(secret).verify(captured.body, fresh)


async def test_a_named_target_is_reached_at_the_address_checked_under_its_own_name(tenure: TenureHarness) -> None:
    with http_receiver() as receiver:
        by_name = receiver.url.replace("127.0.0.1", "localhost")
        _, secret = await subscribe(tenure, by_name, ["customer.created"])
        await create_customer(tenure, "Named")
        assert await tenure.run_jobs() == {"done": 1}
        (delivery,) = receiver.delivered
        assert delivery.headers["host"] == by_name.split("/")[2]  # localhost:<port>, not the address
        assert Webhook(secret).verify(delivery.body, delivery.headers)["type"] == "customer.created"


@pytest.fixture
def localhost_certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for the name localhost, and its key."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl makes the receiver's certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


async def test_https_reaches_the_checked_address_with_the_certificate_checked_against_the_name(
    tenure: TenureHarness, localhost_certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = localhost_certificate
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(cert, key)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # Tenure trusts this receiver's certificate
    with http_receiver(tls=server_side) as receiver:
        by_name = receiver.url.replace("127.0.0.1", "localhost")
        _, secret = await subscribe(tenure, by_name, ["customer.created"])
        # The same receiver by its address: the certificate names localhost, not 127.0.0.1.
        by_address, _ = await subscribe(tenure, receiver.url, ["customer.created"])
        await create_customer(tenure, "Secure")
        assert await tenure.run_jobs() == {"done": 1, "retry": 1}
        (delivery,) = receiver.delivered
        assert delivery.headers["host"] == by_name.split("/")[2]
        assert Webhook(secret).verify(delivery.body, delivery.headers)["type"] == "customer.created"
        (refused,) = (await tenure.ok(DELIVERIES, {"id": by_address}))["webhookDeliveries"]["nodes"]
        assert refused["error"].startswith(f"could not reach {receiver.url}: ConnectError")
        assert "certificate" in refused["error"]


async def test_a_rotated_secret_signs_beside_the_new_one_until_its_window_ends(tenure: TenureHarness) -> None:
    start = datetime.now(UTC) - timedelta(minutes=2)
    with http_receiver() as receiver, clock.use_clock(clock.FrozenClock(start)) as frozen:
        subscription, old = await subscribe(tenure, receiver.url, ["customer.created"])
        refused = await tenure.ok(ROTATE, {"input": {"subscriptionId": subscription, "keepPreviousSeconds": -1}})
        assert refused["rotateWebhookSecret"]["secret"] is None
        assert refused["rotateWebhookSecret"]["userErrors"] == [{
            "field": ["input", "keepPreviousSeconds"], "code": "OUT_OF_RANGE",
            "message": "must be from 0 to 2592000 seconds (30 days), got -1"}]
        rotated = (await tenure.ok(ROTATE, {"input": {"subscriptionId": subscription, "keepPreviousSeconds": 60}}))
        new = rotated["rotateWebhookSecret"]["secret"]
        assert new.startswith("whsec_") and new != old
        expires = rotated["rotateWebhookSecret"]["subscription"]["previousSecretsExpireAt"]
        assert [datetime.fromisoformat(e) for e in expires] == [start + timedelta(seconds=60)]
        listed = (await tenure.ok(HEALTH))["webhookSubscriptions"]
        assert listed[0]["previousSecretsExpireAt"] == expires
        assert "secret" not in json.dumps(listed)  # shown once, in the mutation's answer

        frozen.advance(seconds=30)  # inside the window: signed by both, each verifies
        await create_customer(tenure, "During")
        assert await tenure.run_jobs() == {"done": 1}
        during = receiver.requests[0]
        assert len(during.headers["webhook-signature"].split(" ")) == 2
        for secret in (old, new):
            assert Webhook(secret).verify(during.body, during.headers)["type"] == "customer.created"

        frozen.set(start + timedelta(minutes=2))  # the window has closed: only the new one
        await create_customer(tenure, "After")
        assert await tenure.run_jobs() == {"done": 1}
        after = receiver.requests[1]
        assert len(after.headers["webhook-signature"].split(" ")) == 1
        assert Webhook(new).verify(after.body, after.headers)["type"] == "customer.created"
        with pytest.raises(WebhookVerificationError, match="No matching signature"):
            Webhook(old).verify(after.body, after.headers)

        # A rotation, then one with keepPreviousSeconds 0 (the secret leaked): every earlier
        # secret stops at once.
        newer = (await tenure.ok(ROTATE, {"input": {"subscriptionId": subscription}}))["rotateWebhookSecret"]
        assert len(newer["subscription"]["previousSecretsExpireAt"]) == 1
        leaked = await tenure.ok(ROTATE, {"input": {"subscriptionId": subscription, "keepPreviousSeconds": 0}})
        newest = leaked["rotateWebhookSecret"]["secret"]
        assert leaked["rotateWebhookSecret"]["subscription"]["previousSecretsExpireAt"] == []
        await create_customer(tenure, "Leaked")
        assert await tenure.run_jobs() == {"done": 1}
        last = receiver.requests[2]
        assert Webhook(newest).verify(last.body, last.headers)["type"] == "customer.created"
        for stopped in (new, newer["secret"]):
            with pytest.raises(WebhookVerificationError):
                Webhook(stopped).verify(last.body, last.headers)
    missing = await tenure.ok(ROTATE, {"input": {"subscriptionId": "999999"}})
    assert missing["rotateWebhookSecret"]["userErrors"] == [{
        "field": ["input", "subscriptionId"], "code": "NOT_FOUND", "message": "no webhook subscription with id 999999"}]


async def test_the_default_rotation_window_is_a_setting_and_a_repeated_rotation_strands_no_one(
    make_tenure: Callable[..., Any], frozen_clock: clock.FrozenClock
) -> None:
    async with make_tenure(plugins=[], webhook_secret_overlap_seconds=7200) as tenure:
        with http_receiver() as receiver:
            subscription, old = await subscribe(tenure, receiver.url, ["customer.created"])
            first = (await tenure.ok(ROTATE, {"input": {"subscriptionId": subscription}}))["rotateWebhookSecret"]
            # The answer was lost on the way and the request sent again: a second rotation. The
            # receiver still holds the oldest secret, and the first new one was never seen.
            frozen_clock.advance(minutes=1)
            second = (await tenure.ok(ROTATE, {"input": {"subscriptionId": subscription}}))["rotateWebhookSecret"]
            expires = [datetime.fromisoformat(e) for e in second["subscription"]["previousSecretsExpireAt"]]
            now = frozen_clock.now()
            assert expires == [now + timedelta(hours=2), now + timedelta(hours=1, minutes=59)]
            frozen_clock.advance(hours=1, minutes=57)
            await create_customer(tenure, "Inside")
            assert await tenure.run_jobs() == {"done": 1}
            frozen_clock.advance(minutes=2)  # the oldest secret's window has closed, the first new one's not
            await create_customer(tenure, "Between")
            assert await tenure.run_jobs() == {"done": 1}
            frozen_clock.advance(minutes=2)
            await create_customer(tenure, "Outside")
            assert await tenure.run_jobs() == {"done": 1}
            inside, between, outside = receiver.requests
            assert all(signed_by(s, inside) for s in (old, first["secret"], second["secret"]))
            assert signed_by(second["secret"], between) and signed_by(first["secret"], between)
            assert not signed_by(old, between)
            assert signed_by(second["secret"], outside) and len(outside.headers["webhook-signature"].split()) == 1


async def test_a_failing_receiver_is_retried_on_the_schedule_under_one_webhook_id(
    tenure: TenureHarness, frozen_clock: clock.FrozenClock
) -> None:
    delays = tenure.settings.webhook_retry_delays()
    jitter = tenure.settings.webhook_retry_jitter
    assert delays[:4] == [5, 300, 1800, 7200] and jitter == 0.1
    with http_receiver(fail_first=3) as receiver:
        subscription, secret = await subscribe(tenure, receiver.url, ["customer.created"])
        await create_customer(tenure, "Patient")
        due_times = []
        for failure in range(3):
            assert await tenure.run_jobs() == {"retry": 1}
            due = await outbox_available_at(tenure)
            waited = (due - frozen_clock.now()).total_seconds()
            assert delays[failure] * (1 - jitter) <= waited <= delays[failure] * (1 + jitter), (failure, waited)
            due_times.append(due)
            frozen_clock.set(due - timedelta(milliseconds=1))
            assert await tenure.run_jobs() == {}  # not a moment before it is due
            frozen_clock.set(due)
        assert await tenure.run_jobs() == {"done": 1}
        assert [r.headers["webhook-id"] for r in receiver.requests] == [receiver.requests[0].headers["webhook-id"]] * 4
        stamps = [int(r.headers["webhook-timestamp"]) for r in receiver.requests]
        assert stamps == sorted(stamps) and len(set(stamps)) == 4  # each attempt signed at its own time
        assert all(signed_by(secret, r) for r in receiver.requests)
        assert len(receiver.delivered) == 1

        nodes = (await tenure.ok(DELIVERIES, {"id": subscription}))["webhookDeliveries"]["nodes"]
        assert [(d["attempt"], d["statusCode"], d["ok"], d["dead"]) for d in nodes] == [
            (4, 200, True, False), (3, 503, False, False), (2, 503, False, False), (1, 503, False, False)]
        assert [datetime.fromisoformat(d["nextAttemptAt"]) for d in reversed(nodes[1:])] == due_times
        assert nodes[0]["nextAttemptAt"] is None and nodes[0]["webhookId"] == receiver.requests[0].headers["webhook-id"]
        health = (await tenure.ok(HEALTH))["webhookSubscriptions"][0]["health"]
        assert health["lastError"] is None and health["deadDeliveries"] == 0
        assert datetime.fromisoformat(health["lastSuccessAt"]) == due_times[-1]


def test_the_retry_delays_spread_within_the_jitter_and_run_out_after_the_schedule() -> None:
    settings = Settings.from_env({}, env_file=None)
    assert settings.webhook_retry_schedule == ("5s", "5m", "30m", "2h", "5h", "10h", "10h")
    rng = random.Random(17)
    for attempt, base in enumerate(settings.webhook_retry_delays(), start=1):
        drawn = [retry_delay(settings, attempt, rng) for _ in range(200)]
        seconds = [d.total_seconds() for d in drawn if d is not None]
        assert len(seconds) == 200 and all(base * 0.9 <= s <= base * 1.1 for s in seconds)
        assert min(seconds) < base * 0.95 and max(seconds) > base * 1.05  # spread, not one delay for all
    assert retry_delay(settings, 8, rng) is None  # the eighth attempt was the last
    total = sum(settings.webhook_retry_delays()) / 3600
    assert 24 <= total <= 28  # about a day before a delivery is dead


@pytest.mark.parametrize(("env", "message"), [
    ({"TENURE_WEBHOOK_RETRY_SCHEDULE": "5s,soon"},
     "TENURE_WEBHOOK_RETRY_SCHEDULE: delays such as 5s,5m,30m,2h,1d separated by commas (got 'soon')"),
    ({"TENURE_WEBHOOK_RETRY_SCHEDULE": "5s,-1m"},
     "TENURE_WEBHOOK_RETRY_SCHEDULE: a delay cannot be negative (got '-1m')"),
    ({"TENURE_WEBHOOK_RETRY_JITTER": "1.5"},
     "TENURE_WEBHOOK_RETRY_JITTER: a share from 0 to below 1, e.g. 0.1 (got 1.5)"),
    ({"TENURE_WEBHOOK_TIMEOUT_SECONDS": "0"}, "TENURE_WEBHOOK_TIMEOUT_SECONDS: seconds above 0 (got 0)"),
    ({"TENURE_WEBHOOK_SECRET_OVERLAP_SECONDS": "-5"}, "TENURE_WEBHOOK_SECRET_OVERLAP_SECONDS: must be 0 or more"),
    ({"TENURE_MESSAGE_WEBHOOK_SECRET": "whsec_!!"}, "TENURE_MESSAGE_WEBHOOK_SECRET: whsec_ must be followed by base64"),
])
def test_a_wrong_webhook_setting_stops_start_up_naming_it(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(env, env_file=None)
    assert str(raised.value) == message


async def test_a_delivery_that_never_succeeds_is_dead_and_shows_where_users_look(
    make_tenure: Callable[..., Any], frozen_clock: clock.FrozenClock, database_url: str
) -> None:
    async with make_tenure(plugins=[], webhook_retry_schedule=("1s", "2s"), webhook_retry_jitter=0.0) as tenure:
        with http_receiver(fail_first=100) as receiver:
            subscription, _ = await subscribe(tenure, receiver.url)
            await create_customer(tenure, "Doomed")
            assert await tenure.run_jobs() == {"retry": 1}
            frozen_clock.advance(seconds=1)
            assert await tenure.run_jobs() == {"retry": 1}
            frozen_clock.advance(seconds=2)
            assert await tenure.run_jobs() == {"dead": 1}
            frozen_clock.advance(days=2)
            assert await tenure.run_jobs() == {}
            assert len(receiver.requests) == 3
            nodes = (await tenure.ok(DELIVERIES, {"id": subscription}))["webhookDeliveries"]["nodes"]
            assert [(d["attempt"], d["dead"], d["nextAttemptAt"] is None) for d in nodes] == [
                (3, True, True), (2, False, False), (1, False, False)]
            health = (await tenure.ok(HEALTH))["webhookSubscriptions"][0]["health"]
            assert health == {**health, "lastError": "the receiver answered HTTP 503", "deadDeliveries": 1,
                              "lastSuccessAt": None, "nextAttemptAt": None}

            env = {"TENURE_DATABASE_URL": database_url, "TENURE_PLUGINS": ""}
            failed = await asyncio.to_thread(CliRunner().invoke, main, ["jobs", "failed"], env=env)
            assert failed.exit_code == 0, failed.output
            (line,) = [line for line in failed.output.splitlines() if "core.deliver_webhook" in line]
            assert line.endswith(f"webhook {nodes[0]['webhookId']} to subscription {pk_of(subscription)} gave up after "
                                 "3 attempts: the receiver answered HTTP 503")

            receiver.answers.clear()  # the receiver is mended; the job is run again by hand
            entry_id = line.split()[0]
            again = await asyncio.to_thread(CliRunner().invoke, main, ["jobs", "retry", entry_id], env=env)
            assert again.exit_code == 0, again.output
            assert await tenure.run_jobs() == {"done": 1}
            health = (await tenure.ok(HEALTH))["webhookSubscriptions"][0]["health"]
            assert health["lastError"] is None and health["lastSuccessAt"] is not None
            assert health["deadDeliveries"] == 1  # the dead attempt stays in the record


@pytest.mark.parametrize(("url", "reason"), [
    ("http://127.0.0.1:9/hooks", "127.0.0.1, a loopback address"),
    ("http://localhost:9/hooks", "localhost resolves to 127.0.0.1, a loopback address"),
    ("http://[::1]/hooks", "::1, a loopback address"),
    ("https://10.1.2.3/hooks", "10.1.2.3, a private address"),
    ("https://192.168.0.10/hooks", "192.168.0.10, a private address"),
    ("http://169.254.169.254/latest/meta-data", "169.254.169.254, a link-local address"),
    ("http://[fe80::1]/hooks", "fe80::1, a link-local address"),
    ("http://224.0.0.1/hooks", "224.0.0.1, a multicast address"),
    ("http://0.0.0.0:8000/hooks", "0.0.0.0, an unspecified address"),
    ("http://[::ffff:127.0.0.1]/hooks", "::ffff:127.0.0.1 stands for 127.0.0.1, a loopback address"),
    ("http://[fd00::5]/hooks", "fd00::5, a private address"),
    ("http://100.64.0.7/hooks", "100.64.0.7, a non-public address"),
])
async def test_private_targets_are_refused_when_subscribing(
    make_tenure: Callable[..., Any], url: str, reason: str
) -> None:
    async with make_tenure(plugins=[], webhook_allow_private_targets=False) as tenure:
        answer = await tenure.gql(
            "mutation($i: CreateWebhookSubscriptionInput!) { createWebhookSubscription(input: $i) "
            "{ secret userErrors { field code message } } }", {"i": {"url": url}},
            key=await tenure.key("admin"))
        created = answer["data"]["createWebhookSubscription"]
        assert created["secret"] is None
        (error,) = created["userErrors"]
        assert (error["field"], error["code"]) == (["input", "url"], "INVALID_URL")
        assert error["message"].startswith(reason) and "TENURE_WEBHOOK_ALLOW_PRIVATE_TARGETS" in error["message"]
        assert (await tenure.ok("{ webhookSubscriptions { id } }"))["webhookSubscriptions"] == []


@pytest.mark.parametrize(("url", "message"), [
    ("ftp://example.com/x", "must be an http or https URL with a host"),
    ("https:///hooks", "must be an http or https URL with a host"),
    ("https://exa mple.com/hooks", "'exa%20mple.com' is not a host name"),
    ("https://shop..example/hooks", "'shop..example' is not a host name"),
    ("https://example.com:99999/hooks", "not a URL Tenure can send to (Port out of range 0-65535)"),
])
async def test_a_url_tenure_cannot_send_to_is_refused_in_words(
    tenure: TenureHarness, url: str, message: str
) -> None:
    answer = await tenure.ok(SUBSCRIBE, {"input": {"url": url}})
    assert answer["createWebhookSubscription"] == {
        "subscription": None, "secret": None,
        "userErrors": [{"field": ["input", "url"], "code": "INVALID_URL", "message": message}]}


async def test_a_name_that_does_not_resolve_is_accepted_then_retried_with_the_reason(
    make_tenure: Callable[..., Any], frozen_clock: clock.FrozenClock
) -> None:
    """DNS may not know the name yet when subscribing; each delivery looks it up again."""
    async with make_tenure(plugins=[], webhook_allow_private_targets=False) as tenure:
        subscription, _ = await subscribe(tenure, "https://hooks.partner.invalid/tenure")
        await create_customer(tenure, "Early")
        assert await tenure.run_jobs() == {"retry": 1}
        (node,) = (await tenure.ok(DELIVERIES, {"id": subscription}))["webhookDeliveries"]["nodes"]
        assert node["error"].startswith("could not find the address of hooks.partner.invalid")
        assert not node["dead"] and node["nextAttemptAt"] is not None


async def test_a_receiver_that_never_answers_is_a_failed_attempt_after_the_timeout(
    make_tenure: Callable[..., Any], frozen_clock: clock.FrozenClock
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # takes the connection, says nothing
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/hooks"
        async with make_tenure(plugins=[], webhook_timeout_seconds=0.5) as tenure:
            subscription, _ = await subscribe(tenure, url)
            await create_customer(tenure, "Waiting")
            assert await tenure.run_jobs() == {"retry": 1}
            (node,) = (await tenure.ok(DELIVERIES, {"id": subscription}))["webhookDeliveries"]["nodes"]
            assert node["error"] == f"{url} did not answer within 0.5 s" and node["statusCode"] is None


def test_public_addresses_pass_and_the_rest_are_named() -> None:
    for public in ("8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "2a00:1450:4001::200e"):
        assert address_refusal(ipaddress.ip_address(public)) is None, public
    wrapped = address_refusal(ipaddress.ip_address("2002:a00:1::"))  # 6to4 around 10.0.0.1
    assert wrapped == "2002:a00:1:: stands for 10.0.0.1, a private address"
    assert address_refusal(ipaddress.ip_address("ff02::1")) == "ff02::1, a multicast address"
    assert address_refusal(ipaddress.ip_address("64:ff9b::808:808")) is None  # NAT64 of 8.8.8.8
    nat64 = address_refusal(ipaddress.ip_address("64:ff9b::a9fe:a9fe"))
    assert nat64 == "64:ff9b::a9fe:a9fe stands for 169.254.169.254, a link-local address"


async def test_a_target_that_turned_private_is_refused_at_delivery_and_the_delivery_is_dead(
    make_tenure: Callable[..., Any]
) -> None:
    """The subscription was made where private targets were allowed (or its name resolved
    to a public address then); at delivery the name resolves to loopback: nothing is sent."""
    with http_receiver() as receiver:
        by_name = receiver.url.replace("127.0.0.1", "localhost")
        async with make_tenure(plugins=[]) as lenient:
            subscription, _ = await subscribe(lenient, by_name)
        async with make_tenure(plugins=[], webhook_allow_private_targets=False) as strict:
            await create_customer(strict, "Guarded")
            assert await strict.run_jobs() == {"dead": 1}
            assert receiver.requests == []
            (node,) = (await strict.ok(DELIVERIES, {"id": subscription}))["webhookDeliveries"]["nodes"]
            assert node["dead"] and node["statusCode"] is None and node["nextAttemptAt"] is None
            assert node["error"] == (
                f"not sent to {by_name}: localhost resolves to 127.0.0.1, a loopback address; webhooks go to "
                "public addresses only (TENURE_WEBHOOK_ALLOW_PRIVATE_TARGETS allows others)")
            async with strict.db.reader() as session:
                entry = await session.scalar(select(OutboxEntry).where(OutboxEntry.job == "core.deliver_webhook"))
            assert entry is not None and entry.status == "dead" and entry.attempts == 1
            assert entry.last_error is not None and "refused: not sent to" in entry.last_error


async def test_production_wants_https_unless_allowed(make_tenure: Callable[..., Any]) -> None:
    production = {"environment": "production", "secret_key": "p" * 40}
    with http_receiver() as receiver:
        async with make_tenure(plugins=[], **production) as tenure:
            answer = await tenure.gql(
                'mutation($u: String!) { createWebhookSubscription(input: {url: $u}) '
                '{ secret userErrors { field code message } } }', {"u": receiver.url}, key=await tenure.key("admin"))
            assert answer["data"]["createWebhookSubscription"]["userErrors"] == [{
                "field": ["input", "url"], "code": "INVALID_URL",
                "message": "must be https in production (TENURE_WEBHOOK_ALLOW_HTTP allows http)"}]
        async with make_tenure(plugins=[], webhook_allow_http=True, **production) as tenure:
            await subscribe(tenure, receiver.url)
            await create_customer(tenure, "Plain")
            assert await tenure.run_jobs() == {"done": 1}
            assert len(receiver.delivered) == 1


async def test_signed_delivery_retry_and_replay(tenure: TenureHarness, frozen_clock: clock.FrozenClock) -> None:
    with http_receiver() as receiver:
        subscription, secret = await subscribe(tenure, receiver.url, ["order.*"])
        cid = await create_customer(tenure, "Hooked")
        receiver.answers = [500]
        order = await record_order(tenure, cid, "W-1", 4200)
        assert await tenure.run_jobs() == {"retry": 1}
        assert len(receiver.requests) == 1  # the customer.created event is not subscribed to
        failed = (await tenure.ok(DELIVERIES, {"id": subscription}))["webhookDeliveries"]["nodes"]
        assert [(d["attempt"], d["statusCode"], d["ok"]) for d in failed] == [(1, 500, False)]
        assert failed[0]["error"] == "the receiver answered HTTP 500"
        assert await tenure.run_jobs() == {}  # the retry waits for its backoff
        frozen_clock.set(datetime.fromisoformat(failed[0]["nextAttemptAt"]))
        assert await tenure.run_jobs() == {"done": 1}
        assert len(receiver.requests) == 2
        for request in receiver.requests:
            assert signed_by(secret, request)
            assert request.headers["x-tenure-event-type"] == "order.recorded"
        body = json.loads(receiver.requests[1].body)
        assert body["type"] == "order.recorded" and body["data"]["orderId"] == pk_of(order["order"]["id"])
        assert body["data"]["amount"] == 4200 and body["customerId"] == pk_of(cid)
        assert receiver.requests[0].headers["webhook-id"] == receiver.requests[1].headers["webhook-id"]
        deliveries = (await tenure.ok(DELIVERIES, {"id": subscription}))["webhookDeliveries"]["nodes"]
        assert [(d["attempt"], d["ok"]) for d in deliveries] == [(2, True), (1, False)]
        replay = await tenure.ok(
            f"mutation($id: ID!) {{ replayWebhookDelivery(deliveryId: $id) {{ queued {ERRORS} }} }}",
            {"id": deliveries[0]["id"]},
        )
        assert replay["replayWebhookDelivery"] == {"queued": True, "userErrors": []}
        assert await tenure.run_jobs() == {"done": 1}
        assert len(receiver.requests) == 3
        assert receiver.requests[2].body == receiver.requests[1].body
        # A replay is the same delivery again: same id (a receiver that handled it drops it).
        assert receiver.requests[2].headers["webhook-id"] == receiver.requests[1].headers["webhook-id"]
        assert signed_by(secret, receiver.requests[2])


async def test_an_unreachable_receiver_is_recorded_and_retried(
    make_tenure: Callable[..., Any], frozen_clock: clock.FrozenClock
) -> None:
    async with make_tenure(plugins=[], webhook_retry_schedule=("1m",)) as tenure:
        with http_receiver() as receiver:
            gone = receiver.url
        subscription, _ = await subscribe(tenure, gone)
        await create_customer(tenure, "Lost")
        assert await tenure.run_jobs() == {"retry": 1}
        frozen_clock.advance(minutes=2)
        assert await tenure.run_jobs() == {"dead": 1}
        deliveries = (await tenure.ok(DELIVERIES, {"id": subscription}))["webhookDeliveries"]["nodes"]
        assert [(d["attempt"], d["dead"]) for d in deliveries] == [(2, True), (1, False)]
        assert all(not d["ok"] and d["statusCode"] is None and "could not reach" in d["error"] for d in deliveries)


async def test_a_password_or_token_in_a_receiver_url_stays_out_of_errors_and_logs(
    make_tenure: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    async with make_tenure(plugins=[], webhook_retry_schedule=()) as tenure:
        with http_receiver() as receiver:
            gone = receiver.url
        secret_url = gone.replace("http://", "http://hooks:pa55word@") + "?token=t0ps3cret"
        subscription, _ = await subscribe(tenure, secret_url)
        await create_customer(tenure, "Lost")
        assert await tenure.run_jobs() == {"dead": 1}
        (delivery,) = (await tenure.ok(DELIVERIES, {"id": subscription}))["webhookDeliveries"]["nodes"]
    assert delivery["error"].startswith(f"could not reach {gone.replace('http://', 'http://hooks:***@')}?token=***")
    said = delivery["error"] + caplog.text
    assert "pa55word" not in said and "t0ps3cret" not in said


async def test_a_partner_catches_up_from_the_feed(tenure: TenureHarness) -> None:
    partner = await tenure.key("integration", scopes=["events:read"])
    query = """query($after: String) { events(first: 2, after: $after) {
      pageInfo { hasNextPage endCursor } nodes { id type customerId } } }"""
    cid = await create_customer(tenure, "Feed")
    await record_order(tenure, cid, "F-1", 100)
    seen: list[str] = []
    cursor = None
    while True:
        page = (await tenure.ok(query, {"after": cursor}, key=partner))["events"]
        seen += [n["type"] for n in page["nodes"]]
        cursor = page["pageInfo"]["endCursor"] or cursor
        if not page["pageInfo"]["hasNextPage"]:
            break
    assert seen == ["customer.created", "order.recorded"]
    # The partner was down while these happened; it asks from where it stopped.
    await record_order(tenure, cid, "F-2", 200)
    await tenure.ok(
        'mutation($c: ID!) { logInteraction(input: {customerId: $c, kind: "call", channel: "phone"}) { created } }',
        {"c": cid},
    )
    page = (await tenure.ok(query, {"after": cursor}, key=partner))["events"]
    assert [n["type"] for n in page["nodes"]] == ["order.recorded", "interaction.logged"]
    ids = [pk_of(n["id"]) for n in page["nodes"]]
    assert ids == sorted(ids)
    empty = (await tenure.ok(query, {"after": page["pageInfo"]["endCursor"]}, key=partner))["events"]
    assert empty["nodes"] == [] and empty["pageInfo"]["hasNextPage"] is False
    other = await tenure.key("integration", scopes=["orders:write"])
    denied = await tenure.gql(query, {"after": None}, key=other)
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"


def test_secrets_written_before_take_the_whsec_form_with_the_same_key(tmp_path: Path) -> None:
    """A subscription made before the Standard Webhooks signatures keeps its key: the
    migration writes it as whsec_ and the base64 of the bytes that signed before."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    settings = Settings.from_env({"TENURE_DATABASE_URL": url, "TENURE_PLUGINS": ""}, env_file=None)
    config = alembic_config(settings, load_plugins(settings))
    alembic.command.upgrade(config, "0005")
    old = "9f" * 24  # secrets.token_hex(24), as subscriptions had
    with sqlite3.connect(tmp_path / "old.db") as conn:
        conn.execute("INSERT INTO webhook_subscriptions (url, secret, event_types, description, active, created_at) "
                     "VALUES ('https://partner.example/hooks', ?, '[]', '', 1, '2026-01-01 00:00:00')", (old,))
    alembic.command.upgrade(config, "heads")
    with sqlite3.connect(tmp_path / "old.db") as conn:
        (secret,) = conn.execute("SELECT secret FROM webhook_subscriptions").fetchone()
    assert secret.startswith("whsec_") and base64.b64decode(secret.removeprefix("whsec_")) == old.encode()
    signed = Webhook(secret).sign("evt_1", datetime(2026, 6, 1, tzinfo=UTC), "{}")
    assert signed == Webhook(old.encode()).sign("evt_1", datetime(2026, 6, 1, tzinfo=UTC), "{}")

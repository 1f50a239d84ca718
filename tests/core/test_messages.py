"""Messages: templates per locale, consent, delivery over a real SMTP server and a real
HTTP receiver, once, signed; retries with backoff visible in the API; quiet hours."""

from __future__ import annotations

import asyncio
import json
import threading
import types
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from tenure.core.clock import FrozenClock
from tenure.core.contributions import DeliveryError, MessageChannel, Outgoing, PluginInfo
from tenure.core.errors import UserError
from tenure.core.messages import send_message
from tenure.core.models import StaffUser
from tenure.core.plugins import hookimpl
from tenure.core.services.customers import CustomerData, create_customer, merge_customers
from tenure.testing import TenureHarness, pk_of
from tests.support.receivers import free_port, http_receiver, smtp_server

CREATE_TEMPLATE = """mutation($input: CreateTemplateInput!) { createTemplate(input: $input) {
  template { id key locale placeholders } userErrors { field message code } } }"""
MESSAGES = """query($f: MessageFilter) { messages(first: 50, filter: $f) { totalCount nodes {
  id channel status toAddress subject body skipReason attempts lastError nextAttemptAt messageId locale } } }"""


async def customer(tenure: TenureHarness, name: str, email: str | None, *, consent: bool = True,
                   locale: str | None = None, owner_id: int | None = None) -> int:
    async with tenure.transaction() as ctx:
        row = await create_customer(ctx, CustomerData(name=name, emails=[email] if email else [], locale=locale,
                                                      consent_email=consent, owner_id=owner_id))
        return row.id


async def owner(tenure: TenureHarness, email: str) -> int:
    async with tenure.transaction() as ctx:
        staff = StaffUser(name="Olga Owner", email=email, active=True, created_at=ctx.now())
        ctx.session.add(staff)
        await ctx.session.flush()
        return staff.id


async def templates(tenure: TenureHarness) -> None:
    for locale, subject, body in (
        ("en", "Hello {customer_name}", "You have {points} points.\nSee you soon."),
        ("de", "Hallo {customer_name}", "Sie haben {points} Punkte."),
    ):
        data = await tenure.ok(CREATE_TEMPLATE, {"input": {"key": "shop.hello", "locale": locale,
                                                           "subject": subject, "body": body}})
        assert data["createTemplate"]["userErrors"] == []
        assert data["createTemplate"]["template"]["placeholders"] == ["customer_name", "points"]


async def test_email_and_webhook_arrive_once_signed_and_in_the_customers_language(
        make_tenure: Callable[..., Any], frozen_clock: FrozenClock) -> None:
    with smtp_server() as mailbox, http_receiver() as receiver:
        async with make_tenure(plugins=[], smtp_host="127.0.0.1", smtp_port=mailbox.port,
                               mail_from="Shop <hello@shop.test>", message_webhook_url=receiver.url,
                               message_webhook_secret="whsec-test") as tenure:
            await templates(tenure)
            ada = await customer(tenure, "Ada", "ada@example.com", locale="en-GB")
            bernd = await customer(tenure, "Bernd", "bernd@example.com", locale="de-DE")
            carl = await customer(tenure, "Carl", "carl@example.com", consent=False)
            for _ in range(2):  # the same messages asked for twice are recorded once
                async with tenure.transaction() as ctx:
                    for cid in (ada, bernd, carl):
                        await send_message(ctx, customer_id=cid, template="shop.hello", data={"points": 120},
                                           dedupe_key=f"hello:{cid}", channels=["email", "webhook"])
            await tenure.run_jobs()
            await tenure.run_jobs()

            [to_ada] = mailbox.to("ada@example.com")
            assert to_ada["Subject"] == "Hello Ada"
            assert "You have 120 points." in to_ada.get_content()
            assert to_ada["From"] == "Shop <hello@shop.test>"
            [to_bernd] = mailbox.to("bernd@example.com")
            assert to_bernd["Subject"] == "Hallo Bernd"
            assert mailbox.to("carl@example.com") == []
            assert len(mailbox.messages) == 2

            assert len(receiver.requests) == 3  # the webhook needs no email consent
            for headers, body in receiver.requests:
                # Standard Webhooks, as event webhooks; a secret not in whsec_ form signs with its bytes.
                sent_at = datetime.fromtimestamp(int(headers["webhook-timestamp"]), UTC)
                assert sent_at == frozen_clock.now().replace(microsecond=0)
                expected = Webhook(b"whsec-test").sign(headers["webhook-id"], sent_at, body.decode())
                assert headers["webhook-signature"] == expected
                assert headers["webhook-id"] == headers["x-tenure-message-id"] == json.loads(body)["messageId"]
            bodies = {json.loads(b)["customerId"]: json.loads(b) for _, b in receiver.requests}
            assert bodies[bernd]["subject"] == "Hallo Bernd" and bodies[bernd]["locale"] == "de"

            data = await tenure.ok(MESSAGES, {"f": {"customerId": str(carl), "channel": "email"}})
            [skipped] = data["messages"]["nodes"]
            assert skipped["status"] == "SKIPPED"
            assert "not consented to email" in skipped["skipReason"]
            sent = await tenure.ok(MESSAGES, {"f": {"status": "SENT"}})
            assert sent["messages"]["totalCount"] == 5
            ada_email = next(m for m in sent["messages"]["nodes"] if m["toAddress"] == "ada@example.com")
            assert ada_email["messageId"] == to_ada["Message-ID"] and ada_email["attempts"] == 1
            # The broker delivering the job twice (or an operator replaying it) sends nothing more.
            async with tenure.transaction() as ctx:
                await ctx.enqueue("core.deliver_message", {"messageId": pk_of(ada_email["id"])}, dedupe_key="again")
            await tenure.run_jobs()
            assert len(mailbox.messages) == 2
            timeline = await tenure.ok(f'{{ customer(id: "{ada}") {{ timeline {{ nodes {{ summary }} }} }} }}')
            summaries = [e["summary"] for e in timeline["customer"]["timeline"]["nodes"]]
            assert "Email \u201cHello Ada\u201d to the customer sent to ada@example.com" in summaries


async def test_failures_are_retried_with_backoff_and_shown(
        make_tenure: Callable[..., Any], frozen_clock: FrozenClock) -> None:
    dead_port = free_port()  # nothing listens here
    with http_receiver(fail_first=2) as receiver:
        async with make_tenure(plugins=[], smtp_host="127.0.0.1", smtp_port=dead_port, message_max_attempts=3,
                               job_backoff_seconds=60.0, message_webhook_url=receiver.url,
                               message_webhook_secret="k") as tenure:
            await templates(tenure)
            ada = await customer(tenure, "Ada", "ada@example.com")
            async with tenure.transaction() as ctx:
                await send_message(ctx, customer_id=ada, template="shop.hello", data={}, dedupe_key="hello",
                                   channels=["webhook", "email"])
            await tenure.run_jobs()
            data = await tenure.ok(MESSAGES)
            by_channel = {m["channel"]: m for m in data["messages"]["nodes"]}
            assert by_channel["webhook"]["status"] == "RETRYING"
            assert by_channel["webhook"]["lastError"] == "the receiver answered HTTP 503"
            assert by_channel["email"]["status"] == "RETRYING"
            assert "could not reach the SMTP server" in by_channel["email"]["lastError"]
            assert by_channel["email"]["attempts"] == 1
            await tenure.run_jobs()  # the backoff has not passed: nothing is tried
            assert (await tenure.ok(MESSAGES))["messages"]["nodes"][0]["attempts"] == 1
            for _ in range(2):
                frozen_clock.advance(minutes=5)
                await tenure.run_jobs()
            data = await tenure.ok(MESSAGES)
            by_channel = {m["channel"]: m for m in data["messages"]["nodes"]}
            assert by_channel["webhook"]["status"] == "SENT" and by_channel["webhook"]["attempts"] == 3
            assert by_channel["webhook"]["lastError"] is None
            assert len(receiver.requests) == 3 and len(receiver.delivered) == 1  # two 503s, then accepted
            assert by_channel["email"]["status"] == "FAILED" and by_channel["email"]["attempts"] == 3

            retried = await tenure.ok(
                """mutation($id: ID!) { retryMessage(input: {id: $id}) { message { status } userErrors { code } } }""",
                {"id": by_channel["email"]["id"]})
            assert retried["retryMessage"]["message"]["status"] == "RETRYING"
            again = await tenure.ok(
                """mutation($id: ID!) { retryMessage(input: {id: $id}) {
                     message { status } userErrors { field code } } }""",
                {"id": by_channel["webhook"]["id"]})
            assert again["retryMessage"]["userErrors"] == [{"field": ["input", "id"], "code": "INVALID_STATUS"}]


async def test_quiet_hours_hold_messages_until_morning(
        make_tenure: Callable[..., Any], frozen_clock: FrozenClock) -> None:
    frozen_clock.set(frozen_clock.now().replace(hour=22))
    with smtp_server() as mailbox:
        async with make_tenure(plugins=[], smtp_host="127.0.0.1", smtp_port=mailbox.port,
                               message_quiet_start_hour=21, message_quiet_end_hour=8) as tenure:
            await templates(tenure)
            ada = await customer(tenure, "Ada", "ada@example.com")
            staff = await owner(tenure, "olga@shop.test")
            bea = await customer(tenure, "Bea", "bea@example.com", owner_id=staff)
            async with tenure.transaction() as ctx:
                await send_message(ctx, customer_id=ada, template="shop.hello", data={}, dedupe_key="night")
                await send_message(ctx, customer_id=bea, template="shop.hello", data={}, dedupe_key="night-owner",
                                   recipient="owner")
            await tenure.run_jobs()
            assert mailbox.to("ada@example.com") == []
            assert len(mailbox.to("olga@shop.test")) == 1  # quiet hours spare customers, not staff
            [held] = (await tenure.ok(MESSAGES, {"f": {"customerId": str(ada)}}))["messages"]["nodes"]
            assert held["status"] == "PENDING" and held["nextAttemptAt"].startswith("2026-06-02T08:00:00")
            frozen_clock.advance(hours=10)
            await tenure.run_jobs()
            assert len(mailbox.to("ada@example.com")) == 1


async def test_quiet_hours_are_the_night_of_the_business_time_zone(
        make_tenure: Callable[..., Any], frozen_clock: FrozenClock) -> None:
    """In Auckland (UTC+12 in June) 21:00 to 08:00 runs from 09:00 to 20:00 UTC: a message at
    10:00 UTC (22:00 there) waits until 20:00 UTC, one at 21:00 UTC (09:00 there) goes at once."""
    frozen_clock.set(frozen_clock.now().replace(hour=10))
    with smtp_server() as mailbox:
        async with make_tenure(plugins=[], smtp_host="127.0.0.1", smtp_port=mailbox.port, timezone="Pacific/Auckland",
                               message_quiet_start_hour=21, message_quiet_end_hour=8) as tenure:
            await templates(tenure)
            ada = await customer(tenure, "Ada", "ada@example.com")
            async with tenure.transaction() as ctx:
                await send_message(ctx, customer_id=ada, template="shop.hello", data={}, dedupe_key="night")
            await tenure.run_jobs()
            assert mailbox.to("ada@example.com") == []
            [held] = (await tenure.ok(MESSAGES, {"f": {"customerId": str(ada)}}))["messages"]["nodes"]
            assert held["status"] == "PENDING" and held["nextAttemptAt"].startswith("2026-06-01T20:00:00")
            frozen_clock.set(frozen_clock.now().replace(hour=21))
            await tenure.run_jobs()
            assert len(mailbox.to("ada@example.com")) == 1
            async with tenure.transaction() as ctx:
                await send_message(ctx, customer_id=ada, template="shop.hello", data={}, dedupe_key="morning")
            await tenure.run_jobs()
            assert len(mailbox.to("ada@example.com")) == 2


async def test_bad_templates_are_refused_and_nothing_is_written(make_tenure: Callable[..., Any]) -> None:
    async with make_tenure(plugins=[]) as tenure:
        for body, fragment in (("Hi {customer.name}", "not a placeholder"), ("Hi {", "not a valid template")):
            data = await tenure.ok(CREATE_TEMPLATE, {"input": {"key": "shop.hello", "locale": "en",
                                                               "subject": "Hi", "body": body}})
            [error] = data["createTemplate"]["userErrors"]
            assert error["field"] == ["input", "body"] and fragment in error["message"]
        missing = await tenure.ok(
            """mutation { updateTemplate(input: {id: "999", body: "x"}) { userErrors { field code } } }""")
        assert missing["updateTemplate"]["userErrors"] == [{"field": ["input", "id"], "code": "NOT_FOUND"}]
        listed = (await tenure.ok("{ templates { key builtIn } }"))["templates"]
        assert [t for t in listed if not t["builtIn"]] == []  # only the core's built-in texts
        await templates(tenure)
        twice = await tenure.ok(CREATE_TEMPLATE, {"input": {"key": "shop.hello", "locale": "EN",
                                                            "subject": "x", "body": "y"}})
        assert twice["createTemplate"]["userErrors"][0]["code"] == "CONFLICT"
        member = tenure.member_token(1)
        denied = await tenure.gql("{ messages { totalCount } }", key=member)
        assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"


class SmsGateway(MessageChannel):
    """A partner's channel: texts to the customer's phone, POSTed to an SMS gateway."""

    name = "sms"
    consent = "sms"
    contact_kind = "phone"

    def __init__(self, url: str) -> None:
        self.url = url

    async def send(self, settings: Any, message: Outgoing) -> None:
        async with httpx.AsyncClient() as client:
            response = await client.post(self.url, json={"to": message.to, "text": message.body,
                                                         "id": message.message_id})
        if response.status_code >= 300:
            raise DeliveryError(f"gateway answered {response.status_code}")


def sms_plugin(url: str) -> types.ModuleType:
    module = types.ModuleType("smsgw")

    @hookimpl
    def tenure_plugin_info() -> PluginInfo:
        return PluginInfo(name="smsgw", version="1.0", summary="Texts through an SMS gateway")

    @hookimpl
    def tenure_message_channels() -> list[MessageChannel]:
        return [SmsGateway(url)]

    module.tenure_plugin_info = tenure_plugin_info  # type: ignore[attr-defined]
    module.tenure_message_channels = tenure_message_channels  # type: ignore[attr-defined]
    return module


async def test_a_partner_channel_respects_its_consent_flag(make_tenure: Callable[..., Any]) -> None:
    with http_receiver() as gateway:
        async with make_tenure(plugins=["smsgw"], extra_plugins=[sms_plugin(gateway.url)]) as tenure:
            await templates(tenure)
            async with tenure.transaction() as ctx:
                yes = await create_customer(ctx, CustomerData(name="Ada", phones=["+44 20 7946 0000"],
                                                              consent_sms=True))
                no = await create_customer(ctx, CustomerData(name="Bo", phones=["+44 20 7946 0001"]))
            async with tenure.transaction() as ctx:
                for cid in (yes.id, no.id):
                    await send_message(ctx, customer_id=cid, template="shop.hello", data={"points": 7},
                                       dedupe_key=f"sms:{cid}", channels=["sms"])
            await tenure.run_jobs()
            [(_, body)] = gateway.requests
            assert json.loads(body)["to"] == "+442079460000"
            assert json.loads(body)["text"].startswith("You have 7 points.")
            [skipped] = (await tenure.ok(MESSAGES, {"f": {"customerId": str(no.id)}}))["messages"]["nodes"]
            assert skipped["status"] == "SKIPPED" and "consented to sms" in skipped["skipReason"]
            async with tenure.transaction() as ctx:
                with pytest.raises(UserError) as refused:
                    await send_message(ctx, customer_id=yes.id, template="shop.hello", data={}, dedupe_key="x",
                                       channels=["carrier-pigeon"])
            assert refused.value.field == "channels" and "carrier-pigeon" in refused.value.message


async def test_merging_customers_moves_their_messages(make_tenure: Callable[..., Any]) -> None:
    async with make_tenure(plugins=[]) as tenure:
        await templates(tenure)
        keep = await customer(tenure, "Ada", "ada@example.com")
        gone = await customer(tenure, "Ada L.", "ada.l@example.com", consent=False)
        async with tenure.transaction() as ctx:
            await send_message(ctx, customer_id=gone, template="shop.hello", data={}, dedupe_key="m1")
        async with tenure.transaction() as ctx:
            await merge_customers(ctx, keep, gone)
        data = await tenure.ok(MESSAGES, {"f": {"customerId": str(keep)}})
        assert data["messages"]["totalCount"] == 1


@pytest.mark.sqlite_only
async def test_a_slow_mail_server_does_not_hold_other_writes_up(make_tenure: Callable[..., Any]) -> None:
    with smtp_server() as mailbox:
        mailbox.hold = threading.Event()
        async with make_tenure(plugins=[], smtp_host="127.0.0.1", smtp_port=mailbox.port) as tenure:
            await templates(tenure)
            ada = await customer(tenure, "Ada", "ada@example.com")
            async with tenure.transaction() as ctx:
                await send_message(ctx, customer_id=ada, template="shop.hello", data={}, dedupe_key="slow")
            jobs = asyncio.create_task(tenure.run_jobs())
            await asyncio.to_thread(mailbox.hold.wait, 30)  # the mail server has the message, and stalls
            try:
                # SQLite has one writer: this write waits for nobody while the email is in flight.
                await asyncio.wait_for(customer(tenure, "Ben", "ben@example.com"), timeout=20)
            finally:
                mailbox.release.set()
            await jobs
            assert len(mailbox.to("ada@example.com")) == 1
            assert (await tenure.ok(MESSAGES))["messages"]["nodes"][0]["status"] == "SENT"

"""A member cannot put another customer's e-mail address on their own record: `updateMe`
holds a new address until its mailbox confirms it (`verifyMemberEmail` with the link's
token), and even then only an address no other customer holds is taken."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tenure.testing import TenureHarness, pk_of
from tests.core.helpers import ERRORS, create_customer
from tests.support.receivers import Mailbox, smtp_server

UPDATE_ME = f"""mutation($emails: [String!]) {{
  updateMe(input: {{emails: $emails}}) {{ me {{ emails }} pendingEmails {ERRORS} }}
}}"""
VERIFY = f"""mutation($token: String!) {{
  verifyMemberEmail(input: {{token: $token}}) {{ email {ERRORS} }}
}}"""
SEARCH = '{ customers(first: 10, filter: {search: "%s"}) { nodes { name emails } } }'


def link_token(mailbox: Mailbox, address: str) -> str:
    (message,) = mailbox.to(address)
    body = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    found = re.search(r"https://app\.example\.com/verify\?token=(\S+)", body)
    assert found, body
    return found.group(1)


async def test_another_customers_address_never_joins_a_members_record(checked_tenure: Callable[..., Any]) -> None:
    with smtp_server() as mailbox:
        async with checked_tenure(plugins=[], smtp_host="127.0.0.1", smtp_port=mailbox.port,
                               member_email_verify_url="https://app.example.com/verify?token={token}") as tenure:
            mia = await create_customer(tenure, "Mia", emails=["mia@example.com"])
            await create_customer(tenure, "Bob", emails=["bob@example.com"])
            token = tenure.member_token(pk_of(mia))

            asked = (await tenure.ok(UPDATE_ME, {"emails": ["mia@example.com", "Bob@Example.com"]},
                                     key=token))["updateMe"]
            # Held, and the answer is the same as for a free address: nothing says Bob exists.
            assert asked == {"me": {"emails": ["mia@example.com"]}, "pendingEmails": ["bob@example.com"],
                             "userErrors": []}
            found = await tenure.ok(SEARCH % "bob@example.com")
            assert found["customers"]["nodes"] == [{"name": "Bob", "emails": ["bob@example.com"]}]

            await tenure.run_jobs()
            # The link went to the address itself (Bob's mailbox), not to Mia.
            assert mailbox.to("mia@example.com") == []
            bobs_link = link_token(mailbox, "bob@example.com")
            # Even with the link in hand (Bob forwards it), an address on another record stays there.
            taken = (await tenure.ok(VERIFY, {"token": bobs_link}, key=token))["verifyMemberEmail"]
            assert taken["email"] is None
            assert taken["userErrors"] == [{"field": ["input", "token"], "code": "EMAIL_TAKEN", "message":
                                            "bob@example.com belongs to another customer's record: ask the business "
                                            "to merge the two"}]
            found = await tenure.ok(SEARCH % "bob@example.com")
            assert [n["name"] for n in found["customers"]["nodes"]] == ["Bob"]


async def test_a_new_address_joins_once_its_mailbox_confirms_it_and_only_if_still_free(
        checked_tenure: Callable[..., Any]) -> None:
    with smtp_server() as mailbox:
        async with checked_tenure(plugins=[], smtp_host="127.0.0.1", smtp_port=mailbox.port,
                               member_email_verify_url="https://app.example.com/verify?token={token}") as tenure:
            mia = await create_customer(tenure, "Mia", emails=["mia@example.com"])
            other = await create_customer(tenure, "Olga", emails=["olga@example.com"])
            token = tenure.member_token(pk_of(mia))
            # Another system knows a third customer by an e-mail identity: that address is held too.
            await create_customer(tenure, "Ida", identities=[{"kind": "email", "value": "ida@example.com"}])
            asked = (await tenure.ok(UPDATE_ME, {"emails": ["mia.new@example.com", "later@example.com",
                                                            "ida@example.com"]}, key=token))["updateMe"]
            # Leaving an address out removes it at once; new ones wait.
            assert asked == {"me": {"emails": []}, "userErrors": [],
                             "pendingEmails": ["mia.new@example.com", "later@example.com", "ida@example.com"]}
            await tenure.run_jobs()
            new_link, later_link = link_token(mailbox, "mia.new@example.com"), link_token(mailbox, "later@example.com")
            idas = (await tenure.gql(VERIFY, {"token": link_token(mailbox, "ida@example.com")}))
            assert idas["data"]["verifyMemberEmail"]["userErrors"][0]["code"] == "EMAIL_TAKEN"

            # Another member cannot use Mia's link; a tampered one is refused; nothing changes.
            olgas = (await tenure.ok(VERIFY, {"token": new_link}, key=tenure.member_token(pk_of(other))))
            assert olgas["verifyMemberEmail"]["userErrors"][0]["code"] == "FORBIDDEN"
            bad = (await tenure.gql(VERIFY, {"token": new_link[:-2] + "xx"}))["data"]["verifyMemberEmail"]
            assert bad["userErrors"][0]["code"] == "INVALID_TOKEN"

            # The page the link opens needs no credentials: the token is the proof.
            done = (await tenure.gql(VERIFY, {"token": new_link}))["data"]["verifyMemberEmail"]
            assert done == {"email": "mia.new@example.com", "userErrors": []}
            again = (await tenure.gql(VERIFY, {"token": new_link}))["data"]["verifyMemberEmail"]
            assert again == {"email": "mia.new@example.com", "userErrors": []}  # a second click changes nothing

            # Meanwhile the back office gave "later@" to another customer: it is not free any more.
            await create_customer(tenure, "Lena", emails=["later@example.com"])
            late = (await tenure.gql(VERIFY, {"token": later_link}))["data"]["verifyMemberEmail"]
            assert late["userErrors"][0]["code"] == "EMAIL_TAKEN"

            me = await tenure.ok("{ me { emails } }", key=token)
            assert me["me"]["emails"] == ["mia.new@example.com"]
            found = await tenure.ok(SEARCH % "later@example.com")
            assert [n["name"] for n in found["customers"]["nodes"]] == ["Lena"]


async def test_a_member_without_email_consent_still_gets_the_link_and_nothing_else(tenure: TenureHarness) -> None:
    """The confirmation is a message the member asked for: consent to marketing mail does
    not apply; and a bad address is refused before anything is sent."""
    mia = await create_customer(tenure, "Mia", emails=["mia@example.com"])
    token = tenure.member_token(pk_of(mia))
    refused = (await tenure.ok(UPDATE_ME, {"emails": ["not an address"]}, key=token))["updateMe"]
    assert refused["me"] is None and refused["pendingEmails"] == []
    assert refused["userErrors"][0]["field"] == ["input", "emails"]
    held = (await tenure.ok(UPDATE_ME, {"emails": ["mia@example.com", "new@example.com"]}, key=token))["updateMe"]
    assert held["pendingEmails"] == ["new@example.com"]
    rows = await tenure.ok('{ messages(first: 5) { nodes { recipient toAddress status skipReason } } }')
    assert rows["messages"]["nodes"] == [{"recipient": "new_address", "toAddress": "new@example.com",
                                          "status": "PENDING", "skipReason": None}]

"""Where webhooks may go, checked when a subscription is made and again at each delivery.

A subscriber chooses the URL, so without a check Tenure would POST wherever it is told:
into its own host (loopback), the private network it runs in, or a cloud's metadata
address (link-local). Only http(s) is sent; production wants https. A name is resolved at
delivery time and the POST goes to the very address that was checked, so a name that
answers with a public address to the check and a private one to the connection (DNS
rebinding) gets nowhere. ``TENURE_WEBHOOK_ALLOW_PRIVATE_TARGETS`` lifts the address check
(receivers inside the same network, tests); ``TENURE_WEBHOOK_ALLOW_HTTP`` lets production
send plain http.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx

if TYPE_CHECKING:
    from tenure.core.settings import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: How long a name may take to resolve before the attempt counts as failed.
RESOLVE_SECONDS = 5.0


#: The well-known NAT64 prefix (RFC 6052): the last 32 bits are an IPv4 address.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class TargetRefused(Exception):
    """The URL is not one Tenure sends to; the message says why, in words."""


def address_refusal(address: IPAddress) -> str | None:
    """Why Tenure will not send to ``address`` (``None``: it may)."""
    shown = _shown(address)
    if isinstance(address, ipaddress.IPv6Address):
        # An IPv4 address wrapped in IPv6 (::ffff:127.0.0.1, 6to4 2002:7f00:1::, NAT64
        # 64:ff9b::7f00:1) reaches the IPv4 one: judge that.
        inner = address.ipv4_mapped or address.sixtofour
        if inner is None and address in _NAT64:
            inner = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if inner is not None:
            reason = address_refusal(inner)
            return f"{shown} stands for {reason}" if reason else None
    for kind, matches in (
        ("an unspecified", address.is_unspecified),
        ("a loopback", address.is_loopback),
        ("a link-local", address.is_link_local),
        ("a multicast", address.is_multicast),
        ("a private", address.is_private or getattr(address, "is_site_local", False)),
        ("a reserved", address.is_reserved),
        ("a non-public", not address.is_global),
    ):
        if matches:
            return f"{shown}, {kind} address"
    return None


def _shown(address: IPAddress) -> str:
    """``address`` as people write it (Python 3.11 spells ::ffff:127.0.0.1 ::ffff:7f00:1)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return f"::ffff:{address.ipv4_mapped}"
    return str(address)


#: A host name as DNS has it (after IDNA): labels of letters, digits, underscores and inner hyphens.
_HOST_NAME = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)(\.(?!-)[a-z0-9_-]{1,63}(?<!-))*\.?$")


def _parts(url: str) -> tuple[str, str, int]:
    """Scheme, host (ASCII, as DNS asks for it) and port of ``url``, or :class:`TargetRefused`."""
    try:
        target = httpx.URL(url)
        host = target.raw_host.decode("ascii").lower()
        port = urlsplit(url).port or target.port
    except (httpx.InvalidURL, UnicodeError, ValueError) as exc:
        raise TargetRefused(f"not a URL Tenure can send to ({exc})") from None
    if target.scheme not in ("http", "https") or not host:
        raise TargetRefused("must be an http or https URL with a host")
    if _literal(host) is None and not _HOST_NAME.match(host):
        raise TargetRefused(f"{host!r} is not a host name")
    return target.scheme, host, port or (443 if target.scheme == "https" else 80)


def check_scheme(url: str, settings: Settings) -> tuple[str, str, int]:
    """Scheme, host and port of ``url`` if Tenure may send there by its form."""
    scheme, host, port = _parts(url)
    if scheme == "http" and settings.production and not settings.webhook_allow_http:
        raise TargetRefused("must be https in production (TENURE_WEBHOOK_ALLOW_HTTP allows http)")
    return scheme, host, port


def _literal(host: str) -> IPAddress | None:
    """The address ``host`` is written as, if it is one."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


async def resolve(host: str, port: int) -> list[IPAddress]:
    """The addresses ``host`` stands for now (itself, when it is one)."""
    literal = _literal(host)
    if literal is not None:
        return [literal]
    loop = asyncio.get_running_loop()
    try:
        found = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), RESOLVE_SECONDS)
    except (OSError, UnicodeError, TimeoutError) as exc:
        raise LookupError(f"could not find the address of {host}: {exc or 'no answer in time'}") from None
    addresses: list[IPAddress] = []
    for *_, sockaddr in found:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def refuse_any(host: str, addresses: list[IPAddress], settings: Settings) -> None:
    """:class:`TargetRefused` if any address is one Tenure does not send to: a name with
    one private address among public ones is refused whole."""
    if settings.webhook_allow_private_targets:
        return
    for address in addresses:
        reason = address_refusal(address)
        if reason is not None:
            where = "" if len(addresses) == 1 and _literal(host) == address else f"{host} resolves to "
            raise TargetRefused(
                f"{where}{reason}; webhooks go to public addresses only "
                "(TENURE_WEBHOOK_ALLOW_PRIVATE_TARGETS allows others)")


async def check_subscription_url(url: str, settings: Settings) -> None:
    """At subscription time: the form, and the addresses the host has now. A name that does
    not resolve yet is let through; each delivery checks it again."""
    _, host, port = check_scheme(url, settings)
    try:
        addresses = await resolve(host, port)
    except LookupError:
        return
    refuse_any(host, addresses, settings)


async def post(client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str],
               settings: Settings) -> httpx.Response:
    """POST ``body`` to ``url`` at an address checked just now. Raises :class:`TargetRefused`
    for a target Tenure does not send to, :class:`LookupError` for a name that does not
    resolve, :class:`TimeoutError` when no whole answer came in time, and httpx's errors for
    the rest. Redirects are not followed (a redirect could point anywhere)."""
    scheme, host, port = check_scheme(url, settings)
    addresses = await resolve(host, port)
    refuse_any(host, addresses, settings)
    target = httpx.URL(url)
    # The request goes to the checked address; Host and, for https, the name the
    # certificate must match stay the subscriber's name.
    pinned_headers = {**headers, "Host": target.netloc.decode("ascii")}
    extensions = {"sni_hostname": host} if scheme == "https" else {}
    last: httpx.ConnectError | None = None
    for address in addresses:
        request = client.build_request("POST", target.copy_with(host=str(address)), content=body,
                                       headers=pinned_headers, extensions=extensions)
        try:
            # The whole exchange within the timeout (a receiver answering a byte at a time
            # does not hold a worker), and the answer's body left unread: only its status counts.
            async with asyncio.timeout(settings.webhook_timeout_seconds):
                response = await client.send(request, stream=True)
                await response.aclose()
            return response
        except httpx.ConnectError as exc:
            last = exc  # the next address of the name, as a browser would
    assert last is not None  # resolve returns at least one address or raises
    raise last

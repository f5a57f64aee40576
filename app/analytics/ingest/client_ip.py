"""Which address a request came from.

The peer address, unless the peer is a trusted proxy; then the right-most `X-Forwarded-For`
entry that is not itself a trusted proxy. The left-most entry is whatever the client wrote.

Every `X-Forwarded-For` line counts, read in order as one list: a proxy may add a line of its
own rather than append to the client's (HAProxy's `option forwardfor` does), and a client may
send several, so the first line alone is the client's to choose. `Forwarded` (RFC 7239) is not
read: a proxy must send `X-Forwarded-For`.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
FORWARDED_FOR = b"x-forwarded-for"  # ASGI servers send header names in lower case


def _parse(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        # Most addresses are IPv4; inet_pton accepts exactly the dotted quads ipaddress does
        # (no leading zeros, no short forms) at a seventh of the cost of parsing the text.
        return ipaddress.IPv4Address(socket.inet_pton(socket.AF_INET, text))
    except (OSError, ValueError):
        pass
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _trusted(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, nets: Sequence[Network]
) -> bool:
    return any(address in net for net in nets)


def is_trusted(peer: str, trusted: Sequence[Network]) -> bool:
    """Whether the peer address `peer` is one of the `trusted` proxies."""
    address = _parse(peer)
    return address is not None and _trusted(address, trusted)


def request_client_ip(
    client: tuple[str, int] | None,
    headers: Iterable[tuple[bytes, bytes]],
    trusted: Sequence[Network],
) -> str | None:
    """`client_ip` of an ASGI request, from its scope's `client` and `headers`."""
    peer = client[0] if client else None
    if not trusted:  # the usual embedded case: no header to look for
        return client_ip(peer, (), trusted)
    lines = [value.decode("latin-1") for name, value in headers if name == FORWARDED_FOR]
    return client_ip(peer, lines, trusted)


def client_ip(
    peer: str | None, forwarded_for: Sequence[str], trusted: Sequence[Network]
) -> str | None:
    """The client's address as a string, or None when nothing usable is known.

    `forwarded_for` holds the `X-Forwarded-For` lines in the order they came.
    """
    address = _parse(peer) if peer else None
    if address is None:
        return None
    if not trusted or not _trusted(address, trusted) or not forwarded_for:
        return str(address)
    for hop in reversed(",".join(forwarded_for).split(",")):
        candidate = _parse(hop)
        if candidate is None:
            return str(address)
        if not _trusted(candidate, trusted):
            return str(candidate)
        address = candidate
    return str(address)

"""Client IP: the peer, or the right-most untrusted X-Forwarded-For hop behind trusted proxies,
across every X-Forwarded-For line of the request."""

from __future__ import annotations

import ipaddress

import pytest

from app.analytics.ingest.client_ip import _parse, client_ip, request_client_ip

PROXIES = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8"))


PROXY = "10.0.0.2"
CLIENT = "198.51.100.1"


@pytest.mark.parametrize(
    ("peer", "lines", "trusted", "expected"),
    [
        # No X-Forwarded-For, or nobody trusted to write it: the peer.
        ("203.0.113.7", [], (), "203.0.113.7"),
        ("203.0.113.7", [CLIENT], (), "203.0.113.7"),
        (PROXY, [], PROXIES, PROXY),
        # An untrusted peer: whatever it sent is ignored, one line or two.
        ("203.0.113.7", [CLIENT], PROXIES, "203.0.113.7"),
        ("203.0.113.7", ["6.6.6.6", CLIENT], PROXIES, "203.0.113.7"),
        # One line, appended to by each proxy.
        (PROXY, [CLIENT], PROXIES, CLIENT),
        (PROXY, [f"6.6.6.6, {CLIENT}"], PROXIES, CLIENT),  # the left-most is forged
        (PROXY, [f"6.6.6.6, {CLIENT}, 10.0.0.9"], PROXIES, CLIENT),
        (PROXY, ["10.0.0.5, 10.0.0.9"], PROXIES, "10.0.0.5"),  # all trusted: the left-most
        (PROXY, [f"garbage, {CLIENT}"], PROXIES, CLIENT),
        (PROXY, [f"{CLIENT}, garbage"], PROXIES, PROXY),
        # Two lines: the client's own, then the one its proxy added (HAProxy's `forwardfor`).
        (PROXY, ["6.6.6.6", CLIENT], PROXIES, CLIENT),  # a spoofed first line
        (PROXY, ["6.6.6.6, 7.7.7.7", CLIENT], PROXIES, CLIENT),
        (PROXY, [CLIENT, CLIENT], PROXIES, CLIENT),  # a client that names itself changes nothing
        (PROXY, ["", CLIENT], PROXIES, CLIENT),  # an empty line of the client's
        (PROXY, ["6.6.6.6", f"{CLIENT}, 10.0.0.9"], PROXIES, CLIENT),  # two proxies, two lines
        (PROXY, [CLIENT, "10.0.0.9"], PROXIES, CLIENT),
        (PROXY, ["6.6.6.6", "garbage"], PROXIES, PROXY),
        # Ports and IPv6.
        ("fd00::1", ["[2001:db8::5]:443"], PROXIES, "2001:db8::5"),
        (PROXY, [f"{CLIENT}:5000"], PROXIES, CLIENT),
        ("fd00::1", ["6.6.6.6", "2001:db8::5"], PROXIES, "2001:db8::5"),
        # No usable peer.
        ("testclient", [], (), None),
        (None, [CLIENT], PROXIES, None),
    ],
)
def test_client_ip(peer, lines, trusted, expected):
    assert client_ip(peer, lines, trusted) == expected
    headers = [(b"user-agent", b"Mozilla/5.0")]
    headers += [(b"x-forwarded-for", line.encode()) for line in lines]
    client = (peer, 40000) if peer else None
    assert request_client_ip(client, headers, trusted) == expected


def test_every_x_forwarded_for_line_of_a_request_is_read_in_order():
    headers = [
        (b"x-forwarded-for", b"6.6.6.6"),
        (b"content-type", b"text/plain"),
        (b"x-forwarded-for", CLIENT.encode()),
        (b"x-forwarded-for", b"10.0.0.9"),
    ]
    assert request_client_ip((PROXY, 40000), headers, PROXIES) == CLIENT
    assert request_client_ip((PROXY, 40000), headers[:2], PROXIES) == "6.6.6.6"


def test_the_forwarded_header_is_not_read():
    headers = [(b"forwarded", f"for={CLIENT}".encode())]
    assert request_client_ip((PROXY, 40000), headers, PROXIES) == PROXY
    headers.append((b"x-forwarded-for", b"203.0.113.9"))
    assert request_client_ip((PROXY, 40000), headers, PROXIES) == "203.0.113.9"


@pytest.mark.parametrize(
    "text",
    [
        "1.2.3.4",
        "0.0.0.0",
        "255.255.255.255",
        "256.1.1.1",
        "01.2.3.4",
        "1.2.3",
        "1.2.3.4.5",
        "1..3.4",
        "0x1.2.3.4",
        "1.2.3.4\x00",
        "\uff11.2.3.4",
        "::1",
        "2001:db8::5",
        "::ffff:1.2.3.4",
        "fe80::1%eth0",
        "",
        "garbage",
    ],
)
def test_addresses_parse_as_ipaddress_parses_them(text):
    try:
        expected = ipaddress.ip_address(text)
    except ValueError:
        expected = None
    assert _parse(text) == expected

"""Allowed hostnames: normalising entries and matching event hostnames against them."""

from __future__ import annotations

import pytest

from app.addresses.hostnames import normalize_hostname
from app.analytics.ingest.sites import AllowedHostnames
from app.errors import InvalidInput


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("Shop.Example.com", "shop.example.com"),
        ("https://www.example.com:8443/path?q=1", "example.com"),
        ("example.com.", "example.com"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("*.Example.com", "*.example.com"),
        ("https://*.bücher.example/", "*.xn--bcher-kva.example"),
        ("*.www.example.com", "*.www.example.com"),
    ],
)
def test_entries_are_normalized(raw, normalized):
    assert normalize_hostname(raw) == normalized


@pytest.mark.parametrize(
    "raw", ["", "localhost", "*.com", "*", "a.*.example.com", "**.example.com", "exa mple.com"]
)
def test_invalid_entries_are_rejected_naming_the_entry(raw):
    with pytest.raises(InvalidInput, match="is not a valid hostname"):
        normalize_hostname(raw)


ALLOWED = AllowedHostnames.of(["example.com", "*.shop.example", "xn--bcher-kva.example"])


@pytest.mark.parametrize(
    ("hostname", "allowed"),
    [
        ("example.com", True),
        ("blog.example.com", False),
        ("a.shop.example", True),
        ("b.a.shop.example", True),
        ("shop.example", False),
        ("evilshop.example", False),
        ("shop.example.evil.com", False),
        ("bücher.example", True),
        ("xn--bcher-kva.example", True),
        ("example.com.", True),
        ("other.example", False),
        ("\udcff.example", False),
    ],
)
def test_matching(hostname, allowed):
    assert ALLOWED.allows(hostname) is allowed


def test_an_empty_list_allows_any_hostname():
    assert AllowedHostnames.of([]).allows("anything.example")
    assert AllowedHostnames() == AllowedHostnames.of([])


def test_entries_are_split_into_a_set_and_suffixes_and_hashable():
    assert (ALLOWED.exact, ALLOWED.suffixes) == (
        frozenset({"example.com", "xn--bcher-kva.example"}),
        (".shop.example",),
    )
    assert isinstance(hash(ALLOWED), int)  # part of the frozen, cached `SiteRef`

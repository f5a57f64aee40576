"""Normalising and validating email addresses."""

from __future__ import annotations

import pytest

from app.addresses.emails import normalize_email
from app.errors import InvalidInput


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("Jo@Example.COM", "jo@example.com"),
        ("  jo.smith+ursa@mail.example.co.uk \n", "jo.smith+ursa@mail.example.co.uk"),
        ("jo@bücher.example", "jo@xn--bcher-kva.example"),
        ("o'brien@example.com", "o'brien@example.com"),
    ],
)
def test_normalize_email(raw, normalized):
    assert normalize_email(raw) == normalized


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "jo",
        "jo@",
        "@example.com",
        "jo@localhost",
        "jo@@example.com",
        "jo smith@example.com",
        ".jo@example.com",
        "jo..smith@example.com",
        "jo\n@example.com",
        "jo@exa\nmple.com",
        "jo@-example.com",
        '"jo"@example.com',
        "x" * 65 + "@example.com",
        "jo@" + "x" * 250 + ".com",
        "<script>@example.com",
    ],
)
def test_invalid_emails_are_rejected(raw):
    with pytest.raises(InvalidInput, match="not a valid email address"):
        normalize_email(raw)

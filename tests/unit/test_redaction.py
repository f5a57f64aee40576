"""Tokens in URLs never reach the logs."""

from __future__ import annotations

import pytest

from app.observability.redaction import TOKEN_PATH_PREFIXES, redact

SECRET = "s3cr3t-T0ken_value"


@pytest.mark.parametrize("prefix", TOKEN_PATH_PREFIXES)
def test_every_token_path_is_redacted(prefix):
    line = f'GET https://ursa.example{prefix}{SECRET}?next=/x "200"'
    assert redact(line) == f'GET https://ursa.example{prefix}[redacted]?next=/x "200"'


def test_other_paths_and_text_are_left_alone():
    line = "GET /example.com/cards/overview?period=7d /sharepoint/x /invitations"
    assert redact(line) == line

"""The channel table: each rule on the names the worker stores as a visit's source."""

from __future__ import annotations

import pytest

from app.analytics.buffer.referrers import (
    BRANDS_ANY_SUFFIX,
    SOURCES_BY_DOMAIN,
    UTM_SOURCE_ALIASES,
    source_from_referrer,
    source_from_utm,
)
from app.analytics.queries import channels
from app.analytics.queries.channels import CHANNELS, classify


@pytest.mark.parametrize(
    ("referrer", "medium", "utm_source", "expected"),
    [
        ("", "", "", "Direct"),
        ("https://www.google.com/search?q=x", "", "", "Organic Search"),
        ("https://www.google.co.uk/", "", "", "Organic Search"),
        ("https://duckduckgo.com/", "", "", "Organic Search"),
        ("https://www.bing.com/", "", "", "Organic Search"),
        ("", "cpc", "google", "Paid Search"),
        ("", "CPC", "bing", "Paid Search"),
        ("", "ppc", "adwords", "Paid Search"),
        ("", "cpc", "facebook", "Paid Social"),
        ("", "paid_social", "anything", "Paid Social"),
        ("https://t.co/abc", "", "", "Organic Social"),
        ("https://www.reddit.com/r/x", "", "", "Organic Social"),
        ("https://news.ycombinator.com/item?id=1", "", "", "Organic Social"),
        ("", "social", "mastodon.example", "Organic Social"),
        ("", "email", "weekly", "Email"),
        ("", "newsletter", "", "Email"),
        ("", "", "newsletter", "Email"),
        ("https://mail.google.com/mail/u/0/", "", "", "Email"),
        ("https://chatgpt.com/", "", "", "AI Assistants"),
        ("", "", "chatgpt.com", "AI Assistants"),
        ("https://www.perplexity.ai/search", "", "", "AI Assistants"),
        ("https://gemini.google.com/app", "", "", "AI Assistants"),
        ("https://copilot.microsoft.com/", "", "", "AI Assistants"),
        ("https://claude.ai/chat/1", "", "", "AI Assistants"),
        ("https://chat.deepseek.com/", "", "", "AI Assistants"),
        ("https://blog.example.org/post", "", "", "Referral"),
        ("", "referral", "partner", "Referral"),
        ("", "", "some-partner", "Referral"),
    ],
)
def test_a_visit_gets_the_channel_of_its_stored_source(referrer, medium, utm_source, expected):
    # the source as the worker stores it (utm_source wins over the referrer)
    source = (
        source_from_utm(utm_source) if utm_source else source_from_referrer(referrer, "me.test")
    )
    assert classify(source, medium, utm_source) == expected


def test_every_channel_is_reachable_and_the_rules_name_only_known_channels():
    assert {rule.channel for rule in channels.RULES} | {channels.REFERRAL} == set(CHANNELS)
    assert len(CHANNELS) == 8


def test_every_stored_search_social_ai_and_mail_name_has_a_channel():
    names = {*SOURCES_BY_DOMAIN.values(), *BRANDS_ANY_SUFFIX.values()}
    names |= set(UTM_SOURCE_ALIASES.values())
    unclassified = {
        name
        for name in names
        if classify(name) == "Referral"
        and name not in ("GitHub", "Stack Overflow", "Medium", "Product Hunt")
    }
    assert unclassified == set()
    for name in ("ChatGPT", "Perplexity", "Claude", "Gemini", "Copilot", "DeepSeek"):
        assert classify(name) == "AI Assistants", name


def test_the_tables_are_lowercase_so_stored_names_match_in_any_case():
    for rule in channels.RULES:
        assert all(value == value.lower() for value in rule.mediums | rule.sources), rule.channel


def test_the_sql_binds_every_list_and_writes_no_source_name_into_the_text():
    assert "chatgpt" not in channels.CHANNEL
    assert "cpc" not in channels.CHANNEL
    assert all(isinstance(value, list) for value in channels.PARAMS.values())
    assert "multiIf(" in channels.CHANNEL

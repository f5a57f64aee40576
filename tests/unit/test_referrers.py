"""Referrer → source and UTM extraction: a table of cases, including past regressions."""

from __future__ import annotations

import pytest

from app.analytics.buffer.referrers import source_from_referrer, source_from_utm, utm_params


@pytest.mark.parametrize(
    ("referrer", "source"),
    [
        ("", ""),
        ("https://example.com/other", ""),  # internal navigation
        ("https://www.example.com/other", ""),
        ("https://docs.example.com/", ""),  # own subdomain
        ("https://www.google.com/", "Google"),
        ("https://www.google.co.uk/search?q=x", "Google"),
        ("https://google.de/", "Google"),
        ("https://www.bing.com/search?q=x", "Bing"),
        ("https://duckduckgo.com/", "DuckDuckGo"),
        ("https://news.ycombinator.com/item?id=1", "Hacker News"),
        ("https://old.reddit.com/r/python", "Reddit"),
        ("https://t.co/abc", "Twitter"),
        ("https://l.facebook.com/l.php", "Facebook"),
        ("https://m.facebook.com/", "Facebook"),
        ("https://github.com/org/repo", "GitHub"),
        ("https://chatgpt.com/", "ChatGPT"),
        ("https://www.perplexity.ai/search", "Perplexity"),
        ("https://blog.someone.dev/post", "blog.someone.dev"),
        ("android-app://com.google.android.gm/", "com.google.android.gm"),
        ("not a url", ""),
    ],
)
def test_source_from_referrer(referrer, source):
    assert source_from_referrer(referrer, "example.com") == source


@pytest.mark.parametrize(
    ("utm", "source"), [("fb", "Facebook"), ("HN", "Hacker News"), ("spring-mail", "spring-mail")]
)
def test_source_from_utm(utm, source):
    assert source_from_utm(utm) == source


def test_utm_params():
    query = "utm_source=hn&utm_medium=social&utm_campaign=launch&utm_content=a&utm_term=b&x=1"
    assert utm_params(query) == ("social", "hn", "launch", "a", "b")
    assert utm_params("q=1") == ("", "", "", "", "")
    assert utm_params("utm_source=" + "x" * 500)[1] == "x" * 200

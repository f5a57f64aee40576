"""Referrer → source classification, and UTM parameters.

A small owned table keyed by registrable domain (`google.co.uk` → Google); anything else is
shown as its host without `www.`. `utm_source` wins over the referrer when present.
"""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import parse_qsl, urlsplit

from publicsuffixlist import PublicSuffixList

DIRECT = "Direct / None"

# Registrable domain → source name. Search engines whose registrable domain varies by country
# are matched on the label before the public suffix (see `_brand`).
SOURCES_BY_DOMAIN: dict[str, str] = {
    "bing.com": "Bing",
    "duckduckgo.com": "DuckDuckGo",
    "ecosia.org": "Ecosia",
    "qwant.com": "Qwant",
    "search.brave.com": "Brave Search",
    "startpage.com": "Startpage",
    "kagi.com": "Kagi",
    "baidu.com": "Baidu",
    "naver.com": "Naver",
    "facebook.com": "Facebook",
    "fb.com": "Facebook",
    "instagram.com": "Instagram",
    "t.co": "Twitter",
    "twitter.com": "Twitter",
    "x.com": "Twitter",
    "linkedin.com": "LinkedIn",
    "lnkd.in": "LinkedIn",
    "reddit.com": "Reddit",
    "news.ycombinator.com": "Hacker News",
    "youtube.com": "YouTube",
    "youtu.be": "YouTube",
    "pinterest.com": "Pinterest",
    "tiktok.com": "TikTok",
    "mastodon.social": "Mastodon",
    "bsky.app": "Bluesky",
    "github.com": "GitHub",
    "stackoverflow.com": "Stack Overflow",
    "medium.com": "Medium",
    "producthunt.com": "Product Hunt",
    "chatgpt.com": "ChatGPT",
    "chat.openai.com": "ChatGPT",
    "perplexity.ai": "Perplexity",
    "claude.ai": "Claude",
    "gemini.google.com": "Gemini",
    "copilot.microsoft.com": "Copilot",
    "chat.deepseek.com": "DeepSeek",
    "chat.mistral.ai": "Mistral",
    "meta.ai": "Meta AI",
    "grok.com": "Grok",
    "poe.com": "Poe",
    "phind.com": "Phind",
    "you.com": "You.com",
    "mail.google.com": "Gmail",
    "outlook.live.com": "Outlook",
    "mail.yahoo.com": "Yahoo Mail",
    "substack.com": "Substack",
}
BRANDS_ANY_SUFFIX: dict[str, str] = {"google": "Google", "yandex": "Yandex", "yahoo": "Yahoo"}
UTM_SOURCE_ALIASES: dict[str, str] = {
    "fb": "Facebook",
    "facebook": "Facebook",
    "ig": "Instagram",
    "instagram": "Instagram",
    "twitter": "Twitter",
    "x": "Twitter",
    "linkedin": "LinkedIn",
    "google": "Google",
    "bing": "Bing",
    "reddit": "Reddit",
    "hn": "Hacker News",
    "newsletter": "Newsletter",
    "chatgpt.com": "ChatGPT",
}
UTM_KEYS = ("utm_medium", "utm_source", "utm_campaign", "utm_content", "utm_term")
MAX_UTM_CHARS = 200

_psl = PublicSuffixList(only_icann=True)


def _host(url: str) -> str:
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return ""
    return host.lower().removeprefix("www.").removeprefix("m.")


@lru_cache(maxsize=16_384)
def source_from_referrer(referrer: str, own_hostname: str) -> str:
    """The source name of an external referrer; "" for none or an internal link."""
    host = _host(referrer)
    if not host or host == own_hostname or host.endswith("." + own_hostname):
        return ""
    for candidate in (host, _psl.privatesuffix(host) or host):
        if candidate in SOURCES_BY_DOMAIN:
            return SOURCES_BY_DOMAIN[candidate]
    brand = _brand(host)
    return BRANDS_ANY_SUFFIX.get(brand, host)


def _brand(host: str) -> str:
    registrable = _psl.privatesuffix(host)
    return registrable.split(".", 1)[0] if registrable else ""


def source_from_utm(utm_source: str) -> str:
    return UTM_SOURCE_ALIASES.get(utm_source.lower(), utm_source)


def utm_params(query: str) -> tuple[str, str, str, str, str]:
    """(medium, source, campaign, content, term) from a URL query string."""
    found = {key: "" for key in UTM_KEYS}
    if "utm_" in query:
        for key, value in parse_qsl(query):
            if key in found and not found[key]:
                found[key] = value[:MAX_UTM_CHARS]
    return (
        found["utm_medium"],
        found["utm_source"],
        found["utm_campaign"],
        found["utm_content"],
        found["utm_term"],
    )

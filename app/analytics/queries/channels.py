"""Channels: which kind of traffic a visit came from, from its source and UTM tags.

One owned table (`RULES`), read top to bottom, the first rule that matches names the channel.
The same rules become a ClickHouse `multiIf` (`CHANNEL`, with the lists bound as parameters,
`PARAMS`) and a Python function (`classify`, for tests and for anything that classifies one
visit), so the two cannot disagree. Sources are compared lowercased against the names
`app.analytics.buffer.referrers` stores in `referrer_source` (its `SOURCES_BY_DOMAIN`, the
brands and the UTM aliases) and against the raw `utm_source`.
"""

from __future__ import annotations

from dataclasses import dataclass

DIRECT = "Direct"
REFERRAL = "Referral"

SEARCH_ENGINES = frozenset(
    {
        "google", "bing", "duckduckgo", "ecosia", "qwant", "brave search", "startpage",
        "kagi", "baidu", "naver", "yandex", "yahoo", "yahoo! search", "search.brave.com",
        "seznam", "seznam.cz", "sogou", "ask", "aol",
    }
)  # fmt: skip
SOCIAL_NETWORKS = frozenset(
    {
        "facebook", "fb", "instagram", "ig", "twitter", "x", "t.co", "linkedin", "reddit",
        "hacker news", "hn", "youtube", "pinterest", "tiktok", "mastodon", "bluesky",
        "threads", "threads.net", "snapchat", "tumblr", "vk", "weibo", "discord", "telegram",
        "whatsapp", "quora",
    }
)  # fmt: skip
AI_ASSISTANTS = frozenset(
    {
        "chatgpt", "chatgpt.com", "chat.openai.com", "openai", "perplexity", "perplexity.ai",
        "claude", "claude.ai", "gemini", "gemini.google.com", "bard.google.com", "copilot",
        "copilot.microsoft.com", "deepseek", "chat.deepseek.com", "mistral", "chat.mistral.ai",
        "meta ai", "meta.ai", "poe", "poe.com", "you.com", "phind", "phind.com", "grok",
        "grok.com", "kimi", "kimi.com",
    }
)  # fmt: skip
EMAIL_SOURCES = frozenset(
    {"gmail", "outlook", "yahoo mail", "newsletter", "email", "e-mail", "mail.google.com",
     "outlook.live.com", "mail.yahoo.com", "substack"}
)  # fmt: skip
EMAIL_MEDIUMS = frozenset({"email", "e-mail", "e_mail", "e mail", "newsletter", "mail"})
PAID_MEDIUMS = frozenset(
    {"cpc", "ppc", "cpm", "cpv", "cpa", "paid", "paidsearch", "paid_search", "paid-search",
     "sem", "display", "retargeting", "paid_ads", "ads"}
)  # fmt: skip
PAID_SOCIAL_MEDIUMS = frozenset({"paidsocial", "paid_social", "paid-social", "social_paid"})
SOCIAL_MEDIUMS = frozenset(
    {"social", "social-network", "social_network", "social-media", "social_media", "sm"}
)
ORGANIC_MEDIUMS = frozenset({"organic"})
REFERRAL_MEDIUMS = frozenset({"referral", "link"})


@dataclass(frozen=True, slots=True)
class Rule:
    """A visit is in `channel` when its medium is one of `mediums` and/or (`both`) its source
    one of `sources`; an empty set matches nothing, except that with `both` it is not asked."""

    channel: str
    mediums: frozenset[str] = frozenset()
    sources: frozenset[str] = frozenset()
    both: bool = False


RULES: tuple[Rule, ...] = (
    Rule("Email", EMAIL_MEDIUMS, EMAIL_SOURCES),
    Rule("Paid Social", PAID_MEDIUMS, SOCIAL_NETWORKS, both=True),
    Rule("Paid Social", PAID_SOCIAL_MEDIUMS),
    Rule("Paid Search", PAID_MEDIUMS),
    Rule("AI Assistants", sources=AI_ASSISTANTS),
    Rule("Organic Search", ORGANIC_MEDIUMS, SEARCH_ENGINES),
    Rule("Organic Social", SOCIAL_MEDIUMS, SOCIAL_NETWORKS),
    Rule(REFERRAL, REFERRAL_MEDIUMS),
    Rule(DIRECT, frozenset({""}), frozenset({""}), both=True),
)
CHANNELS = (
    DIRECT,
    "Organic Search",
    "Paid Search",
    "Organic Social",
    "Paid Social",
    "Email",
    REFERRAL,
    "AI Assistants",
)


def classify(source: str, medium: str = "", utm_source: str = "") -> str:
    """The channel of a visit with this `referrer_source`, `utm_medium` and `utm_source`."""
    medium = medium.lower()
    names = {source.lower(), utm_source.lower()} if utm_source else {source.lower()}
    for rule in RULES:
        by_medium = medium in rule.mediums
        by_source = bool(names & rule.sources)
        if (by_medium and by_source) if rule.both else (by_medium or by_source):
            return rule.channel
    return REFERRAL


def _sql(
    source_column: str = "referrer_source",
    medium_column: str = "utm_medium",
    utm_source_column: str = "utm_source",
) -> tuple[str, dict[str, list[str]]]:
    """The rules as a `multiIf` over three columns (or expressions) and the lists it binds."""
    medium, source = f"lowerUTF8({medium_column})", f"lowerUTF8({source_column})"
    utm_source = f"lowerUTF8({utm_source_column})"
    utm = f"({utm_source_column} != '' AND has({{%s:Array(String)}}, {utm_source}))"
    arms: list[str] = []
    params: dict[str, list[str]] = {}
    for index, rule in enumerate(RULES):
        mediums, sources = f"channel_{index}_m", f"channel_{index}_s"
        params[mediums], params[sources] = sorted(rule.mediums), sorted(rule.sources)
        by_medium = f"has({{{mediums}:Array(String)}}, {medium})"
        by_source = f"(has({{{sources}:Array(String)}}, {source}) OR {utm % sources})"
        joined = " AND " if rule.both else " OR "
        arms.append(f"({by_medium}{joined}{by_source}), '{rule.channel}'")
    return f"multiIf({', '.join(arms)}, '{REFERRAL}')", params


# The channel of a raw event row (its visit's source and UTM tags); bind `PARAMS` with it.
CHANNEL, PARAMS = _sql()
# The same of a `breakdowns_daily` row of the `channel_inputs` dimension, whose value is those
# three columns as a JSON array (clickhouse/0004_more_rollups.sql); the lists are `PARAMS`.
ROLLUP_INPUTS = "channel_inputs"
CHANNEL_OF_INPUTS = _sql(*(f"JSONExtractString(value, {n})" for n in (1, 2, 3)))[0]

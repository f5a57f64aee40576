"""Known bots, crawlers, monitors and headless browsers, recognised by their User-Agent."""

from __future__ import annotations

import re
from functools import lru_cache

_BOT_PATTERN = re.compile(
    "|".join(
        (
            r"bot\b",
            r"bot/",
            r"crawl",
            r"spider",
            r"slurp",
            r"archiver",
            r"scrap",
            r"headless",
            r"phantomjs",
            r"puppeteer",
            r"playwright",
            r"selenium",
            r"webdriver",
            r"lighthouse",
            r"pagespeed",
            r"gtmetrix",
            r"pingdom",
            r"uptime",
            r"monitor",
            r"statuscake",
            r"curl/",
            r"wget/",
            r"httpie/",
            r"python-requests",
            r"python-urllib",
            r"aiohttp",
            r"httpx",
            r"go-http-client",
            r"java/",
            r"okhttp",
            r"libwww-perl",
            r"node-fetch",
            r"axios/",
            r"undici",
            r"postmanruntime",
            r"insomnia",
            r"facebookexternalhit",
            r"embedly",
            r"preview",
            r"mediapartners",
            r"adsbot",
            r"feedfetcher",
            r"bingpreview",
            r"chatgpt-user",
            r"gptbot",
            r"claudebot",
            r"perplexity",
            r"bytespider",
            r"petalbot",
            r"yandex",
            r"baiduspider",
            r"duckduckgo-favicons",
            r"applebot",
            r"semrush",
            r"ahrefs",
            r"mj12",
            r"dotbot",
            r"cloudflare-",
            r"vercel-",
            r"electron/",
        )
    ),
    re.IGNORECASE,
)

MIN_USER_AGENT_CHARS = 10


@lru_cache(maxsize=4096)
def is_bot(user_agent: str) -> bool:
    """True for automated clients; an empty or very short User-Agent counts as one."""
    if len(user_agent) < MIN_USER_AGENT_CHARS:
        return True
    return _BOT_PATTERN.search(user_agent) is not None

"""User-Agent → browser, OS and device class, cached per distinct User-Agent."""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import ua_parser

TABLET_DEVICES = ("ipad", "tablet", "kindle", "silk", "playbook", "nexus 7", "nexus 9", "sm-t")
MOBILE_WIDTH = 576
TABLET_WIDTH = 992
LAPTOP_WIDTH = 1440


class Software(NamedTuple):
    browser: str
    browser_version: str
    os: str
    os_version: str
    device: str


@lru_cache(maxsize=8_192)
def parse_user_agent(user_agent: str) -> Software:
    result = ua_parser.parse(user_agent)
    agent, os = result.user_agent, result.os
    browser = agent.family if agent else ""
    os_name = os.family if os else ""
    return Software(
        browser="" if browser == "Other" else browser,
        browser_version=(agent.major or "") if agent else "",
        os="" if os_name == "Other" else os_name,
        os_version=(os.major or "") if os else "",
        device=_device_from_agent(user_agent, os_name),
    )


def _device_from_agent(user_agent: str, os_name: str) -> str:
    lowered = user_agent.lower()
    if any(marker in lowered for marker in TABLET_DEVICES):
        return "Tablet"
    if "mobile" in lowered or os_name in ("iOS", "Android"):
        return "Mobile"
    return "Desktop"


def device_class(software: Software, screen_width: int) -> str:
    """Screen width (legacy `w`) decides when the client sent it; else the User-Agent."""
    if not screen_width:
        return software.device
    if screen_width < MOBILE_WIDTH:
        return "Mobile"
    if screen_width < TABLET_WIDTH:
        return "Tablet"
    return "Desktop"


def screen_size(screen_width: int) -> str:
    """Plausible's screen size of a page's inner width; "" when the client sent none."""
    if not screen_width:
        return ""
    if screen_width < MOBILE_WIDTH:
        return "Mobile"
    if screen_width < TABLET_WIDTH:
        return "Tablet"
    if screen_width < LAPTOP_WIDTH:
        return "Laptop"
    return "Desktop"

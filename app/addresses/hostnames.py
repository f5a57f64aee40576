"""Domains and hostnames: how a site's domain and its allowed hostnames are written.

An allowed-hostname entry is a hostname normalised like a site domain (lowercase, IDN as
punycode, no scheme, port, path or `www.`), or `*.` and such a name for its subdomains at any
depth: `*.example.com` allows `a.example.com` and `b.a.example.com` but not `example.com`
itself, which is listed on its own.
"""

from __future__ import annotations

import re

from app.errors import InvalidInput

_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://")


WILDCARD = "*."


def normalize_domain(raw: str) -> str:
    """Lowercase, no scheme, no path, no `www.`, IDN as punycode; raise `InvalidInput`."""
    return _checked(_host_part(raw).removeprefix("www."), raw, "domain name", "example.com")


def normalize_hostname(raw: str) -> str:
    """An allowed-hostname entry: a name normalised like a domain, or `*.` + one; else raise."""
    text = _host_part(raw)
    if text.startswith(WILDCARD):
        hint = "*.example.com"
        return WILDCARD + _checked(text.removeprefix(WILDCARD), raw, "hostname pattern", hint)
    return _checked(text.removeprefix("www."), raw, "hostname", "example.com or *.example.com")


def _host_part(raw: str) -> str:
    """Lowercased, without scheme, path, port or trailing dot."""
    text = _SCHEME.sub("", raw.strip().lower())
    return text.split("/", 1)[0].split(":", 1)[0].rstrip(".")


def _checked(text: str, raw: str, kind: str, example: str) -> str:
    """`text` as punycode if it is a valid hostname; else `InvalidInput` naming `raw`."""
    try:
        text = text.encode("idna").decode("ascii")
    except UnicodeError:
        raise InvalidInput(f"{raw!r} is not a valid {kind}") from None
    if not is_hostname(text):
        raise InvalidInput(f"{raw!r} is not a valid {kind} (example: {example})")
    return text


def is_hostname(name: str) -> bool:
    """Whether an ASCII (punycode) lowercase name has at least two valid DNS labels."""
    labels = name.split(".")
    return (
        len(name) <= 253 and len(labels) >= 2 and all(_LABEL.fullmatch(label) for label in labels)
    )


HOSTNAME_LINES_MAX = 100


def parse_hostname_lines(text: str) -> list[str]:
    """One allowed-hostname entry per line (blank lines skipped), normalised and sorted.

    A bad line raises `InvalidInput` naming its number and text, and nothing is changed.
    """
    entries = set()
    lines = text.splitlines()
    if len(lines) > HOSTNAME_LINES_MAX:
        raise InvalidInput(f"At most {HOSTNAME_LINES_MAX} hostnames, one per line.")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            entries.add(normalize_hostname(line))
        except InvalidInput as exc:
            raise InvalidInput(f"Line {number}: {exc}") from None
    return sorted(entries)

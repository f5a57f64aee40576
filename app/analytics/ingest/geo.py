"""Location from an IP address, offline.

Default: the country from the `iptocc` wheel (regional registry data, no download). With
`GEOIP_DB` pointing at a MaxMind-format `.mmdb` (DB-IP Lite, GeoLite2), also region and city.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import iptocc


@dataclass(frozen=True, slots=True)
class Location:
    country_code: str = ""
    region: str = ""
    city: str = ""


UNKNOWN = Location()


class Locator(Protocol):
    def locate(self, ip: str) -> Location: ...


class RegistryLocator:
    """Country only, from the regional internet registries' allocation data."""

    def locate(self, ip: str) -> Location:
        try:
            code = iptocc.country_code(ip)
        except ValueError:
            return UNKNOWN
        return Location(country_code=code) if code else UNKNOWN


class MmdbLocator:
    """Country, region and city from a MaxMind-format database."""

    def __init__(self, path: str) -> None:
        import maxminddb

        self._reader = maxminddb.open_database(path)

    def locate(self, ip: str) -> Location:
        try:
            record: Any = self._reader.get(ip)
        except ValueError:
            return UNKNOWN
        if not isinstance(record, dict):
            return UNKNOWN
        country = (record.get("country") or {}).get("iso_code", "")
        subdivisions = record.get("subdivisions") or [{}]
        region = (subdivisions[0].get("names") or {}).get("en", "")
        city = ((record.get("city") or {}).get("names") or {}).get("en", "")
        return Location(country_code=country or "", region=region, city=city)


def make_locator(mmdb_path: str) -> Locator:
    return MmdbLocator(mmdb_path) if mmdb_path else RegistryLocator()

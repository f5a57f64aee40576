"""Location lookups: the built-in registry data and a MaxMind-format database."""

from __future__ import annotations

from mmdb_writer import MMDBWriter
from netaddr import IPSet

from app.analytics.ingest.geo import UNKNOWN, Location, MmdbLocator, RegistryLocator, make_locator


def test_registry_locator_gives_countries():
    locator = RegistryLocator()
    assert locator.locate("81.2.69.160") == Location(country_code="GB")
    assert locator.locate("127.0.0.1") == UNKNOWN
    assert locator.locate("not an ip") == UNKNOWN


def test_mmdb_locator_gives_region_and_city(tmp_path):
    path = tmp_path / "city.mmdb"
    writer = MMDBWriter(ip_version=6, database_type="GeoIP2-City", ipv4_compatible=True)
    writer.insert_network(
        IPSet(["81.2.69.0/24"]),
        {
            "country": {"iso_code": "GB"},
            "subdivisions": [{"names": {"en": "England"}}],
            "city": {"names": {"en": "London"}},
        },
    )
    writer.to_db_file(str(path))
    locator = make_locator(str(path))
    assert isinstance(locator, MmdbLocator)
    assert locator.locate("81.2.69.160") == Location("GB", "England", "London")
    assert locator.locate("8.8.8.8") == UNKNOWN
    assert locator.locate("garbage") == UNKNOWN
    assert isinstance(make_locator(""), RegistryLocator)

"""Static files: content-hashed URLs cached for a year, revalidation by ETag, gzip, no escape
from the folder, and pages that link the hashed names."""

from __future__ import annotations

import re

from app.web.static_assets import IMMUTABLE, REVALIDATE, assets


async def test_pages_link_hashed_names_that_are_served_immutable(client):
    page = (await client.get("/login")).text
    [css] = re.findall(r'href="(/static/css/app\.[0-9a-f]{12}\.css)"', page)
    response = await client.get(css)
    assert response.status_code == 200
    assert response.headers["cache-control"] == IMMUTABLE
    assert response.headers["content-type"].startswith("text/css")
    found = assets().find("css/app.css")
    assert found is not None
    assert response.content == found[0].body
    assert "set-cookie" not in response.headers


async def test_plain_and_outdated_names_still_work_without_the_immutable_promise(client):
    plain = await client.get("/static/css/app.css")
    stale = await client.get("/static/css/app.000000000000.css")
    assert plain.status_code == stale.status_code == 200
    assert plain.headers["cache-control"] == stale.headers["cache-control"] == REVALIDATE
    assert plain.content == stale.content


async def test_an_etag_revalidates_to_304(client):
    url = assets().url("js/dashboard.js")
    first = await client.get(url)
    again = await client.get(url, headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""


async def test_text_files_are_gzipped_for_clients_that_accept_it(client):
    url = assets().url("vendor/htmx/htmx-2.0.11.min.js")
    plain = await client.get(url, headers={"Accept-Encoding": "identity"})
    packed = await client.get(url, headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in plain.headers
    assert packed.headers["content-encoding"] == "gzip"
    assert packed.headers["vary"] == "Accept-Encoding"
    assert packed.content == plain.content  # httpx decodes gzip
    assert int(packed.headers["content-length"]) < len(plain.content)


async def test_nothing_outside_the_folder_or_unknown_is_served(client):
    for path in ("/static/..%2fsettings.py", "/static/%2e%2e%2fmain.py", "/static/nope.css"):
        assert (await client.get(path)).status_code == 404, path


async def test_text_files_name_their_charset_once(client):
    css = await client.get(assets().url("css/app.css"))
    js = await client.get(assets().url("js/dashboard.js"))
    assert css.headers.get_list("content-type") == ["text/css; charset=utf-8"]
    [js_type] = js.headers.get_list("content-type")
    assert js_type.endswith("javascript; charset=utf-8")
    assert js_type.count("charset") == 1

"""Static files under content-hashed names, cached for a year, gzipped once at start.

Only files found at start are served, so a request can never reach outside the folder; text
files are served gzipped to clients that accept it (`Vary: Accept-Encoding`), and ETags make
revalidation a 304.
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from litestar import Request, Response, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "public, max-age=300, must-revalidate"
COMPRESSIBLE = frozenset({".css", ".js", ".svg", ".txt", ".json", ".map"})
DIGEST_LENGTH = 12
_HASHED = re.compile(rf"^(?P<stem>.+)\.(?P<digest>[0-9a-f]{{{DIGEST_LENGTH}}})(?P<suffix>\.\w+)$")


@dataclass(frozen=True, slots=True)
class Asset:
    path: str  # relative to the static folder, with `/`
    body: bytes
    gzipped: bytes | None
    digest: str
    media_type: str

    @property
    def hashed_path(self) -> str:
        stem, dot, suffix = self.path.rpartition(".")
        return f"{stem}.{self.digest}.{suffix}" if dot else f"{self.path}.{self.digest}"

    @property
    def etag(self) -> str:
        return f'"{self.digest}"'


def _load(file: Path, relative: str) -> Asset:
    body = file.read_bytes()
    gzipped = None
    if file.suffix in COMPRESSIBLE:
        packed = gzip.compress(body, compresslevel=9, mtime=0)
        gzipped = packed if len(packed) < len(body) else None
    media_type = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
    # Litestar's `Response` names the charset of `text/*` types itself; the other text files
    # (`application/javascript` on some systems, JSON, SVG) get it here.
    if not media_type.startswith("text/") and file.suffix in (".js", ".json", ".svg"):
        media_type += "; charset=utf-8"
    digest = hashlib.sha256(body).hexdigest()[:DIGEST_LENGTH]
    return Asset(relative, body, gzipped, digest, media_type)


class StaticAssets:
    def __init__(self, directory: Path) -> None:
        files = (path for path in sorted(directory.rglob("*")) if path.is_file())
        assets = [_load(path, path.relative_to(directory).as_posix()) for path in files]
        self._by_path = {asset.path: asset for asset in assets}

    def url(self, path: str) -> str:
        """The content-hashed URL of a static file; `KeyError` for a file that does not exist
        (a template bug, caught by any test that renders the page)."""
        return f"/static/{self._by_path[path].hashed_path}"

    def find(self, requested: str) -> tuple[Asset, str] | None:
        """The asset a request names, and the Cache-Control it may be served with.

        The content-hashed name (`app.<digest>.css`) may be kept forever (`public,
        max-age=31536000, immutable`): it changes when the content does. The plain name, and an
        outdated digest (a page cached from before a deploy gets today's file, not a 404), get a
        short, revalidated cache instead.
        """
        if requested in self._by_path:
            return self._by_path[requested], REVALIDATE
        match = _HASHED.match(requested)
        if match is None:
            return None
        asset = self._by_path.get(f"{match['stem']}{match['suffix']}")
        if asset is None:
            return None
        return asset, IMMUTABLE if match["digest"] == asset.digest else REVALIDATE


@cache
def assets() -> StaticAssets:
    return StaticAssets(STATIC_DIR)


def static_url(path: str) -> str:
    """Jinja global: `{{ static_url("css/app.css") }}`."""
    return assets().url(path)


@get("/static/{file_path:path}", name="static", include_in_schema=False)
async def serve_static(
    request: Request[Any, Any, Any], file_path: FromPath[Path]
) -> Response[bytes]:
    found = assets().find(file_path.as_posix().lstrip("/"))
    if found is None:
        raise NotFoundException(f"no static file {file_path}")
    asset, cache_control = found
    headers = {"Cache-Control": cache_control, "ETag": asset.etag, "Vary": "Accept-Encoding"}
    if asset.etag in request.headers.get("if-none-match", ""):
        return Response(b"", status_code=304, headers=headers)
    body = asset.body
    if asset.gzipped is not None and "gzip" in request.headers.get("accept-encoding", ""):
        body, headers["Content-Encoding"] = asset.gzipped, "gzip"
    return Response(body, media_type=asset.media_type, headers=headers)

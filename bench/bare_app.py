"""The product's web app plus one bare route (`POST /bench/bare` → 204, no work), bench only.

Run with `python -m bench.bare_app --port N` (settings from the environment, like `ursa web`),
served by the same uvicorn configuration as `ursa web`: the bare route measures what the server,
the framework and the loopback network cost per request, so `/api/event` can be compared to it.
"""

from __future__ import annotations

import argparse

import uvicorn
from litestar import Litestar, Response, post

from app.main import create_app
from app.server.run import _uvicorn_config
from app.services import Services
from app.settings import Settings

BARE_PATH = "/bench/bare"


# Cookieless like `/api/event`: it skips the login and CSRF layer
# (app.accounts.request_auth.WebAuthMiddleware), which would answer a bare POST 403.
@post(BARE_PATH, status_code=204, opt={"cookieless": True})
async def bare() -> Response[None]:
    return Response(content=None, status_code=204)


def create_bench_app(settings: Settings) -> Litestar:
    app = create_app(settings, Services(settings))
    app.register(bare)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    settings = Settings().with_secrets()
    config = _uvicorn_config(create_bench_app(settings), "127.0.0.1", args.port)
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()

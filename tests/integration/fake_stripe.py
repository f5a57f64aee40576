"""A fake Stripe on 127.0.0.1 for the billing tests.

localstripe (PyPI) answers customers, products, subscriptions and invoices with Stripe's shapes
and checks the secret key; it has no Checkout Sessions and no Billing Portal, so two small
handlers here answer `POST /v1/checkout/sessions` and `POST /v1/billing_portal/sessions` as
Stripe's API reference shows them (the customer must exist in localstripe) and record each
request. localstripe's routes and its auth and error middlewares are mounted on an app of our
own, without its middleware that pickles its store to /tmp after every write.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
import warnings
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.conftest import free_port

with warnings.catch_warnings():  # localstripe registers sync handlers, which aiohttp deprecates
    warnings.simplefilter("ignore", DeprecationWarning)
    import localstripe.server as localstripe
    from localstripe.resources import Customer


@dataclass(frozen=True)
class Recorded:
    path: str
    form: dict[str, str]
    authorization: str


class FakeStripe:
    def __init__(self) -> None:
        self.port = free_port()
        self.requests: list[Recorded] = []
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def recorded(self, path: str) -> list[Recorded]:
        return [request for request in self.requests if request.path == path]

    def _app(self) -> web.Application:
        app = web.Application(
            middlewares=[localstripe.error_middleware, localstripe.auth_middleware]
        )
        app.router.add_post("/v1/checkout/sessions", self._checkout_session)
        app.router.add_post("/v1/billing_portal/sessions", self._portal_session)
        for route in localstripe.app.router.routes():
            app.router.add_route(route.method, route.resource.canonical, route.handler)
        return app

    async def _record(self, request: web.Request) -> dict[str, str]:
        form = {key: str(value) for key, value in (await request.post()).items()}
        self.requests.append(Recorded(request.path, form, request.headers["Authorization"]))
        Customer._api_retrieve(form["customer"])  # 404 in Stripe's shape if it does not exist
        return form

    async def _checkout_session(self, request: web.Request) -> web.Response:
        form = await self._record(request)
        session_id = f"cs_test_{secrets.token_hex(12)}"
        body: dict[str, Any] = {
            "id": session_id,
            "object": "checkout.session",
            "mode": form["mode"],
            "customer": form["customer"],
            "client_reference_id": form.get("client_reference_id"),
            "success_url": form["success_url"],
            "cancel_url": form["cancel_url"],
            "status": "open",
            "url": f"{self.url}/checkout/{session_id}",
            "livemode": False,
            "created": int(time.time()),
        }
        return web.json_response(body)

    async def _portal_session(self, request: web.Request) -> web.Response:
        form = await self._record(request)
        session_id = f"bps_{secrets.token_hex(12)}"
        body = {
            "id": session_id,
            "object": "billing_portal.session",
            "customer": form["customer"],
            "return_url": form.get("return_url"),
            "url": f"{self.url}/portal/{session_id}",
            "livemode": False,
            "created": int(time.time()),
        }
        return web.json_response(body)

    def start(self) -> None:
        started = threading.Event()

        async def serve() -> None:
            self._runner = web.AppRunner(self._app())
            await self._runner.setup()
            await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
            started.set()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(serve())
            self._loop.run_forever()

        threading.Thread(target=run, daemon=True, name="fake-stripe").start()
        if not started.wait(10):
            raise RuntimeError("the fake Stripe server did not start")

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)

"""Kubernetes probes: `/healthz` (the process answers) and `/readyz` (it can take ingest
traffic: `app.web.readiness`)."""

from __future__ import annotations

from litestar import Response, get
from litestar.di import NamedDependency

from app.services import Services
from app.web.readiness import check_ready, readiness


@get("/healthz", cache=False)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get("/readyz", cache=False)
async def readyz(services: NamedDependency[Services]) -> Response[dict[str, object]]:
    checks = await check_ready(services)
    status, ok = readiness(checks)
    return Response({"status": status, "checks": checks}, status_code=200 if ok else 503)

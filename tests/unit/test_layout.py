"""The layout of `app/` as docs/architecture.md writes it, checked on the import graph.

The graph is built from the source with `ast` (nothing is imported): an edge A → B for every
`import B` / `from B import x` in A, at module level or inside a function, where `from P
import m` names the module `P.m` when that is a module.
"""

from __future__ import annotations

import ast
import graphlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[2] / "app"
SPINE = frozenset({"app", "app.main", "app.settings", "app.services", "app.db", "app.errors"})
# Packages that start processes: nothing below them may import them.
TOP = ("app.cli", "app.server")
# Observability is a leaf: what it needs is handed to it at start-up.
OBSERVABILITY_MAY_IMPORT = ("app.observability", "app.settings", "app.errors")
# Only the command-line layer defers imports into its functions (so that `ursa --help` and the
# first line of `ursa serve` wait for nothing); everywhere else an import is at the top.
DEFERRED_IMPORTS_ALLOWED = ("app.cli",)


@dataclass(frozen=True)
class Import:
    source: str
    target: str
    line: int
    in_function: bool


def module_name(path: Path) -> str:
    parts = path.relative_to(APP.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in APP.rglob("*.py")}


def _resolve(module: str, name: str | None) -> str:
    candidate = f"{module}.{name}" if name else module
    return candidate if candidate in MODULES else module


def _imports_of(source: str, tree: ast.AST) -> Iterator[Import]:
    functions = [
        node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    ]
    nested = {id(sub) for fn in functions for sub in ast.walk(fn)}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            targets = [_resolve(node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            continue
        for target in targets:
            if target == "app" or target.startswith("app."):
                yield Import(source, target, node.lineno, id(node) in nested)


IMPORTS = [
    found
    for name, path in sorted(MODULES.items())
    for found in _imports_of(name, ast.parse(path.read_text(), str(path)))
]


def _within(module: str, packages: tuple[str, ...] | frozenset[str]) -> bool:
    return any(module == package or module.startswith(f"{package}.") for package in packages)


def _show(violations: list[Import]) -> str:
    return "\n".join(f"{v.source}:{v.line} imports {v.target}" for v in violations)


def test_the_graph_is_read() -> None:
    assert len(MODULES) > 50
    assert any(i.source == "app.main" and i.target == "app.settings" for i in IMPORTS)


def test_no_import_cycles() -> None:
    graph = {name: set[str]() for name in MODULES}
    for found in IMPORTS:
        if found.target in graph and found.target != found.source:
            graph[found.source].add(found.target)
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as cycle:
        pytest.fail("import cycle: " + " -> ".join(cycle.args[1]))


def test_only_the_spine_sits_at_the_root_of_app() -> None:
    strays = sorted(
        name for name, path in MODULES.items() if path.parent == APP and name not in SPINE
    )
    assert strays == []


def test_nothing_imports_the_command_line_or_the_server_from_below() -> None:
    """`app.cli` is imported by nothing else; `app.server` by itself and `app.cli` only."""
    upward = [
        i
        for i in IMPORTS
        if (_within(i.target, ("app.cli",)) and not _within(i.source, ("app.cli",)))
        or (_within(i.target, ("app.server",)) and not _within(i.source, TOP))
    ]
    assert not upward, _show(upward)


def test_only_the_server_and_the_command_line_build_the_app() -> None:
    builders = ("app.server", "app.cli")
    found = [i for i in IMPORTS if i.target == "app.main" and not _within(i.source, builders)]
    assert not found, _show(found)


def test_domain_code_starts_jobs_through_the_port_only() -> None:
    """Below `app.tasks` nothing imports it: a job is started by name (`app.store.jobs`)."""
    above = ("app.tasks", "app.cli", "app.server")
    found = [
        i for i in IMPORTS if _within(i.target, ("app.tasks",)) and not _within(i.source, above)
    ]
    assert not found, _show(found)


def test_observability_is_a_leaf() -> None:
    found = [
        i
        for i in IMPORTS
        if _within(i.source, ("app.observability",))
        and not _within(i.target, OBSERVABILITY_MAY_IMPORT)
    ]
    assert not found, _show(found)


def test_imports_of_the_app_sit_at_the_top_of_modules() -> None:
    deferred = [
        i for i in IMPORTS if i.in_function and not _within(i.source, DEFERRED_IMPORTS_ALLOWED)
    ]
    assert not deferred, _show(deferred)


# Store modules own one kind of record on one backend and take its client; flows take Services.
STORES = (
    "app.accounts.users",
    "app.accounts.tokens",
    "app.accounts.web_sessions",
    "app.organizations.teams",
    "app.sites.registry",
    "app.addresses",
    "app.analytics",
    "app.cache",
    "app.dashboard",
    "app.mail",
    "app.store",
)


def test_stores_take_their_client_not_the_services() -> None:
    found = [i for i in IMPORTS if _within(i.source, STORES) and i.target == "app.services"]
    assert not found, _show(found)


OPENS_REDIS = re.compile(r"\bRedis(\.from_url)?\((?!connection_pool=)")


def test_redis_clients_are_opened_by_the_store_only() -> None:
    """A client over another client's connection pool opens no connection of its own."""
    found = [
        f"{name}: {line.strip()}"
        for name, path in MODULES.items()
        if not _within(name, ("app.store",))
        for line in path.read_text().splitlines()
        if OPENS_REDIS.search(line)
    ]
    assert not found, "\n".join(found)

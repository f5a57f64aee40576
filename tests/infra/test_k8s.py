"""Kubernetes manifests (`k8s/`): schemas, checkov, both overlays rendered, and cross-checks.

Built-in kinds pass `kubernetes-validate --strict`; custom resources (Gateway API, Envoy
Gateway, cert-manager, sealed-secrets, Flux) pass the CRD schemas in `tests/infra/crds/`;
checkov finds nothing, and every skip gives its reason. The source files and the rendered
overlays go through the same checks. Cross-checks tie the pieces together: settings are ones
Ursa knows, routes point at real Services and listeners, network policies allow exactly the
connections the app needs.
"""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml  # type: ignore[import-untyped]

from .render import (
    CRDS,
    K8S,
    ROOT,
    CustomKind,
    Doc,
    containers,
    custom_kinds,
    custom_resource_errors,
    find_tool,
    kubectl_with_kustomize,
    load_docs,
    manifest_files,
    named,
    of_kind,
    pod_spec,
    render,
)

KUBERNETES_VERSION = "1.35"
OVERLAYS = ("staging", "production")
BUILDS = ("apps/ursa", "cluster", *(f"overlays/{name}" for name in OVERLAYS))
# Deployment env vars that only build a setting (CLICKHOUSE_URL embeds the password).
COMPOSITION_VARS = {"CLICKHOUSE_PASSWORD"}
URSA_ROLES = {"web", "worker", "scheduler", "migrate"}
DISTRIBUTED_SETTINGS = {"REDIS_URL", "SECRET_KEY", "HASH_KEY", "INTERNAL_TOKEN", "DATABASE_URL"}
SKIP_ANNOTATION = re.compile(r"^(CKV2?_K8S_\d+)=(.{15,})$")
SETTER = re.compile(r'#\s*\{"\$imagepolicy":\s*"([\w-]+):([\w-]+):tag"\}')


@pytest.fixture(scope="module")
def builds() -> dict[str, list[Doc]]:
    """Every kustomization under k8s/ rendered: the app base, the cluster, both overlays."""
    kubectl = kubectl_with_kustomize()
    return {name: render(kubectl, K8S / name) for name in BUILDS}


@pytest.fixture(scope="module")
def sources() -> list[Doc]:
    return load_docs(manifest_files())


@pytest.fixture(scope="module")
def kinds() -> dict[tuple[str, str], CustomKind]:
    return custom_kinds()


@pytest.fixture(scope="module")
def settings() -> set[str]:
    """The setting names Ursa knows, from `.env.example`."""
    text = (ROOT / ".env.example").read_text()
    names = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", text, re.MULTILINE))
    assert "REDIS_URL" in names, ".env.example lists no settings"
    return names


def doc_sets(builds: dict[str, list[Doc]], sources: list[Doc]) -> dict[str, list[Doc]]:
    return {"source files": sources, **builds}


def ursa_containers(docs: list[Doc]) -> Iterator[tuple[Doc, Doc]]:
    """(workload, container) for every container running the Ursa image."""
    for doc in docs:
        spec = pod_spec(doc) if doc["kind"] in ("Deployment", "Job") else None
        for container in containers(spec) if spec else ():
            if container["image"].rsplit("/", 1)[-1].startswith("ursa:"):
                yield doc, container


def config_data(docs: list[Doc], name: str) -> dict[str, str]:
    """The data of the generated ConfigMap `name` (its name carries a hash suffix)."""
    maps = [
        doc
        for doc in of_kind(docs, "ConfigMap")
        if re.fullmatch(rf"{name}(-[a-z0-9]{{10}})?", doc["metadata"]["name"])
    ]
    assert len(maps) == 1, f"expected one ConfigMap {name}, found {len(maps)}"
    data: dict[str, str] = maps[0]["data"]
    return data


def container_env(docs: list[Doc], container: Doc) -> dict[str, str]:
    """The container's environment: ConfigMaps and Secrets it loads, then its own env."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            name = re.sub(r"-[a-z0-9]{10}$", "", source["configMapRef"]["name"])
            env.update(config_data(docs, name))
        else:
            sealed = named(docs, "SealedSecret", source["secretRef"]["name"])
            env.update({key: "(sealed)" for key in sealed["spec"]["encryptedData"]})
    for item in container.get("env", []):
        env[item["name"]] = item.get("value", "(from a reference)")
    return env


# --- schemas -----------------------------------------------------------------------------


def test_built_in_kinds_pass_kubernetes_validate_strict(
    builds: dict[str, list[Doc]],
    sources: list[Doc],
    kinds: dict[tuple[str, str], CustomKind],
    tmp_path: Path,
) -> None:
    """Every object without a CRD schema here is a built-in kind that kubernetes-validate
    knows and accepts with unknown fields rejected (an unknown kind is reported, not passed);
    the CRD files themselves are validated too."""
    files = sorted(CRDS.glob("*.yaml"))
    expected = len(load_docs(files))
    for name, docs in doc_sets(builds, sources).items():
        built_in = [doc for doc in docs if (doc["apiVersion"], doc["kind"]) not in kinds]
        files.append(tmp_path / f"{name.replace('/', '-').replace(' ', '-')}.yaml")
        files[-1].write_text(yaml.safe_dump_all(built_in))
        expected += len(built_in)
    result = subprocess.run(
        [find_tool("kubernetes-validate"), "--strict", "-k", KUBERNETES_VERSION, *files],
        capture_output=True,
        text=True,
        check=False,
    )
    output = result.stdout + result.stderr
    problems = [line for line in output.splitlines() if not line.startswith("INFO")]
    assert not problems, "\n".join(problems)
    assert result.returncode == 0, output
    assert output.count(" passed for resource ") == expected, output


def test_custom_resources_match_their_crd_schemas(
    builds: dict[str, list[Doc]], sources: list[Doc], kinds: dict[tuple[str, str], CustomKind]
) -> None:
    checked = [
        (name, doc)
        for name, docs in doc_sets(builds, sources).items()
        for doc in docs
        if (doc["apiVersion"], doc["kind"]) in kinds
    ]
    errors = [
        f"{name}: {error}" for name, doc in checked for error in custom_resource_errors(doc, kinds)
    ]
    assert not errors, "\n".join(errors)
    assert {doc["kind"] for _, doc in checked} == {kind for _, kind in kinds}, "a CRD is unused"


def test_crd_schemas_reject_unknown_fields_and_bad_values(
    sources: list[Doc], kinds: dict[tuple[str, str], CustomKind]
) -> None:
    """The CRD check is strict: a typo'd field, a bad enum and a missing field all fail."""
    route = named(sources, "HTTPRoute", "app")
    assert custom_resource_errors(route, kinds) == []
    typo = {**route, "spec": {**route["spec"], "hostname": ["x.example.com"]}}
    policy = named(sources, "BackendTrafficPolicy", "app-rate-limit")
    bad_unit = json.loads(json.dumps(policy).replace('"Minute"', '"Fortnight"'))
    no_secret = json.loads(json.dumps(named(sources, "Certificate", "ursa-tls")))
    del no_secret["spec"]["secretName"]
    for broken, expected in (
        (typo, "hostname: unknown field"),
        (bad_unit, "'Fortnight' is not one of"),
        (no_secret, "secretName: required"),
    ):
        errors = custom_resource_errors(broken, kinds)
        assert any(expected in error for error in errors), errors


# --- checkov -----------------------------------------------------------------------------


def test_checkov_finds_no_failed_checks(builds: dict[str, list[Doc]], tmp_path: Path) -> None:
    """checkov over the source files and over each rendered build."""
    tree = tmp_path / "scan"
    (tree / "rendered").mkdir(parents=True)
    for name, docs in builds.items():
        (tree / "rendered" / f"{name.replace('/', '-')}.yaml").write_text(yaml.safe_dump_all(docs))
    source = tree / "source"
    for path in manifest_files():
        target = source / path.relative_to(K8S)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(path.read_text())
    result = subprocess.run(
        [
            find_tool("checkov"),
            *("-d", str(tree), "--framework", "kubernetes", "--skip-download", "-o", "json"),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=240,
    )
    assert result.stdout.startswith("{"), f"checkov did not run:\n{result.stderr[-3000:]}"
    report = json.loads(result.stdout)
    failed = [
        f"{check['check_id']} {check['resource']} ({check['file_path']})"
        for check in report["results"]["failed_checks"]
    ]
    assert not failed, "\n".join(failed)
    assert report["summary"]["passed"] > 500, report["summary"]


def test_every_checkov_skip_is_justified(sources: list[Doc]) -> None:
    skips = [
        (doc["metadata"]["name"], value)
        for doc in sources
        for key, value in doc["metadata"].get("annotations", {}).items()
        if key.startswith("checkov.io/skip")
    ]
    assert skips, "no checkov skips found: has the annotation key changed?"
    unjustified = [f"{name}: {value}" for name, value in skips if not SKIP_ANNOTATION.match(value)]
    assert not unjustified, "a skip needs CKV_K8S_nn=<reason>:\n" + "\n".join(unjustified)


# --- overlays ----------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_sets_image_tag_release_and_host(
    builds: dict[str, list[Doc]], overlay: str
) -> None:
    docs = builds[f"overlays/{overlay}"]
    images = {container["image"] for _, container in ursa_containers(docs)}
    assert len(images) == 1, f"every Ursa process must run one image: {images}"
    (image,) = images
    assert "set-by-overlay" not in image, image
    assert "/" in image, f"{image}: the overlay names the registry"
    config = config_data(docs, "ursa-config")
    assert config["RELEASE"] == image.rsplit(":", 1)[1]
    host = urlsplit(config["BASE_URL"]).hostname
    for route in of_kind(docs, "HTTPRoute"):
        assert route["spec"]["hostnames"] == [host], route["metadata"]["name"]


def test_overlays_differ_in_hosts_replicas_resources_and_tags(
    builds: dict[str, list[Doc]],
) -> None:
    staging, production = (builds[f"overlays/{name}"] for name in OVERLAYS)

    def summary(docs: list[Doc]) -> tuple[Any, ...]:
        web = named(docs, "Deployment", "web")["spec"]["template"]["spec"]["containers"][0]
        hpa = named(docs, "HorizontalPodAutoscaler", "web")["spec"]
        return (
            config_data(docs, "ursa-config")["BASE_URL"],
            web["image"],
            web["resources"],
            hpa["minReplicas"],
            named(docs, "ImagePolicy", "ursa")["spec"]["policy"],
        )

    for left, right in zip(summary(staging), summary(production), strict=True):
        assert left != right, f"staging and production both have {left}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_image_automation_writes_to_its_own_overlay(
    builds: dict[str, list[Doc]], overlay: str
) -> None:
    docs = builds[f"overlays/{overlay}"]
    automation = named(docs, "ImageUpdateAutomation", "ursa")["spec"]
    assert automation["update"] == {"strategy": "Setters", "path": f"./k8s/overlays/{overlay}"}
    markers = SETTER.findall((K8S / "overlays" / overlay / "kustomization.yaml").read_text())
    policy = named(docs, "ImagePolicy", "ursa")
    assert markers == [(policy["metadata"]["namespace"], policy["metadata"]["name"])]
    repository = policy["spec"]["imageRepositoryRef"]["name"]
    registry = named(docs, "ImageRepository", repository)["spec"]["image"]
    images = {container["image"] for _, container in ursa_containers(docs)}
    assert images == {f"{registry}:{image.rsplit(':', 1)[1]}" for image in images}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_flux_applies_cluster_then_overlay(overlay: str) -> None:
    flux = load_docs([K8S / "clusters" / overlay / "flux.yaml"])
    paths = {doc["metadata"]["name"]: doc["spec"]["path"] for doc in flux}
    assert paths == {"cluster": "./k8s/cluster", "ursa": f"./k8s/overlays/{overlay}"}
    for path in paths.values():
        assert (ROOT / path / "kustomization.yaml").exists(), path
    app = named(flux, "Kustomization", "ursa")["spec"]
    assert app["dependsOn"] == [{"name": "cluster"}]
    assert app["force"] is True, "the migrate Job is immutable: Flux must replace it"


# --- settings ----------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ursa_env_names_are_settings_ursa_knows(
    builds: dict[str, list[Doc]], settings: set[str], overlay: str
) -> None:
    docs = builds[f"overlays/{overlay}"]
    unknown = set(config_data(docs, "ursa-config")) - settings
    sealed = named(docs, "SealedSecret", "ursa-secrets")["spec"]["encryptedData"]
    unknown |= set(sealed) - settings - COMPOSITION_VARS
    for _, container in ursa_containers(docs):
        unknown |= {item["name"] for item in container.get("env", [])} - settings
    assert not unknown, f"not in .env.example: {sorted(unknown)}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_ursa_process_gets_the_distributed_settings(
    builds: dict[str, list[Doc]], overlay: str
) -> None:
    docs = builds[f"overlays/{overlay}"]
    roles = set()
    for _, container in ursa_containers(docs):
        (role,) = container["args"]
        roles.add(role)
        env = container_env(docs, container)
        needed = DISTRIBUTED_SETTINGS | ({"CLICKHOUSE_URL"} if role != "scheduler" else set())
        assert needed <= set(env), f"{role} lacks {sorted(needed - set(env))}"
        for name in COMPOSITION_VARS & set(env):
            uses = [value for value in env.values() if f"$({name})" in value]
            assert uses or role == "scheduler", f"{role}: {name} is loaded but never used"
    assert roles == URSA_ROLES


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_service_urls_point_at_services_and_ports(
    builds: dict[str, list[Doc]], overlay: str
) -> None:
    """REDIS_URL, CACHE_REDIS_URL and CLICKHOUSE_URL name a Service port in the build."""
    docs = builds[f"overlays/{overlay}"]
    web = named(docs, "Deployment", "web")["spec"]["template"]["spec"]["containers"][0]
    env = container_env(docs, web)
    for setting in ("REDIS_URL", "CACHE_REDIS_URL", "CLICKHOUSE_URL"):
        url = urlsplit(env[setting].replace("$(CLICKHOUSE_PASSWORD)", "secret"))
        assert url.hostname, f"{setting}={env[setting]}"
        assert url.port, f"{setting}={env[setting]}: name the port"
        service, namespace, *rest = url.hostname.split(".")
        assert rest == ["svc", "cluster", "local"], f"{setting}: use the service's full name"
        ports = [port["port"] for port in named(docs, "Service", service)["spec"]["ports"]]
        assert namespace == "ursa", f"{setting}: {url.netloc}"
        assert url.port in ports, f"{setting}: {url.netloc}"


# --- workloads ---------------------------------------------------------------------------


@pytest.mark.parametrize("build", BUILDS)
def test_no_container_runs_as_root_or_writes_its_image(
    builds: dict[str, list[Doc]], build: str
) -> None:
    problems = []
    for doc in builds[build]:
        spec = pod_spec(doc)
        if spec is None:
            continue
        pod = spec.get("securityContext", {})
        for container in containers(spec):
            context = {**pod, **container.get("securityContext", {})}
            where = f"{doc['kind']} {doc['metadata']['name']}/{container['name']}"
            if not (context.get("runAsNonRoot") and context.get("runAsUser", 0) > 0):
                problems.append(f"{where}: may run as root")
            if not context.get("readOnlyRootFilesystem"):
                problems.append(f"{where}: writable root filesystem")
            if context.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: privilege escalation allowed")
            if context.get("capabilities", {}).get("drop") != ["ALL"]:
                problems.append(f"{where}: capabilities not all dropped")
            if context.get("seccompProfile", {}).get("type") != "RuntimeDefault":
                problems.append(f"{where}: no RuntimeDefault seccomp profile")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("build", BUILDS)
def test_every_workload_has_resources_and_probes(builds: dict[str, list[Doc]], build: str) -> None:
    """Requests and limits everywhere; long-running containers that serve a port have
    liveness and readiness probes, and the ones that serve none say why (checkov skip)."""
    problems = []
    for doc in builds[build]:
        spec = pod_spec(doc)
        if spec is None:
            continue
        skips = " ".join(doc["metadata"].get("annotations", {}).values())
        for container in containers(spec):
            where = f"{doc['kind']} {doc['metadata']['name']}/{container['name']}"
            resources = container.get("resources", {})
            for bound in ("requests", "limits"):
                if set(resources.get(bound, {})) != {"cpu", "memory"}:
                    problems.append(f"{where}: {bound} need cpu and memory")
            if doc["kind"] not in ("Deployment", "StatefulSet"):
                continue
            for probe, check in (("livenessProbe", "CKV_K8S_8="), ("readinessProbe", "CKV_K8S_9=")):
                if probe not in container and (container.get("ports") or check not in skips):
                    problems.append(f"{where}: no {probe}")
    assert not problems, "\n".join(problems)


def test_web_probes_and_ports(builds: dict[str, list[Doc]]) -> None:
    docs = builds["overlays/production"]
    config = config_data(docs, "ursa-config")
    (web,) = named(docs, "Deployment", "web")["spec"]["template"]["spec"]["containers"]
    ports = {port["name"]: port["containerPort"] for port in web["ports"]}
    assert ports == {"http": int(config["PORT"]), "metrics": int(config["METRICS_PORT"])}
    assert ports == {"http": 8000, "metrics": 8001}
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        assert web[probe]["httpGet"] == {"path": path, "port": "http"}
    spread = named(docs, "Deployment", "web")["spec"]["template"]["spec"]
    assert {c["topologyKey"] for c in spread["topologySpreadConstraints"]} >= {
        "topology.kubernetes.io/zone"
    }


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_scheduler_runs_exactly_once(builds: dict[str, list[Doc]], overlay: str) -> None:
    docs = builds[f"overlays/{overlay}"]
    scheduler = named(docs, "Deployment", "scheduler")["spec"]
    assert scheduler["replicas"] == 1
    assert scheduler["strategy"] == {"type": "Recreate"}
    targets = {
        hpa["spec"]["scaleTargetRef"]["name"] for hpa in of_kind(docs, "HorizontalPodAutoscaler")
    }
    assert "scheduler" not in targets


def test_autoscaling_bounds(builds: dict[str, list[Doc]]) -> None:
    for build in ("apps/ursa", "overlays/production"):
        docs = builds[build]
        hpas = {
            hpa["spec"]["scaleTargetRef"]["name"]: hpa["spec"]
            for hpa in of_kind(docs, "HorizontalPodAutoscaler")
        }
        assert set(hpas) == {"web", "worker"}
        web = hpas["web"]
        assert (web["minReplicas"], web["maxReplicas"]) == (2, 8)
        assert web["metrics"] == [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 50},
                },
            }
        ]
        for name, hpa in hpas.items():
            assert 1 <= hpa["minReplicas"] <= hpa["maxReplicas"], name
            deployment = named(docs, "Deployment", name)["spec"]
            assert "replicas" not in deployment, f"{name}: the HPA owns the replica count"


@pytest.mark.parametrize("build", BUILDS)
def test_disruption_budgets_select_pods(builds: dict[str, list[Doc]], build: str) -> None:
    docs = builds[build]
    labels = [doc["spec"]["template"]["metadata"]["labels"] for doc in of_kind(docs, "Deployment")]
    for pdb in of_kind(docs, "PodDisruptionBudget"):
        selector = pdb["spec"]["selector"]["matchLabels"]
        assert any(selector.items() <= pod.items() for pod in labels), pdb["metadata"]["name"]


# --- data stores -------------------------------------------------------------------------


def _memory_bytes(quantity: str) -> int:
    units = {"kb": 10**3, "mb": 10**6, "gb": 10**9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    number, unit = re.fullmatch(r"(\d+)([A-Za-z]*)", quantity).groups()  # type: ignore[union-attr]
    return int(number) * units.get(unit, 1)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_redis_keeps_every_event(builds: dict[str, list[Doc]], overlay: str) -> None:
    docs = builds[f"overlays/{overlay}"]
    conf = named(docs, "ConfigMap", "redis-config")["data"]["redis.conf"]
    directives = dict(line.split(None, 1) for line in conf.splitlines() if line.strip())
    assert directives["appendonly"] == "yes"
    assert directives["maxmemory-policy"] == "noeviction"
    (redis,) = named(docs, "StatefulSet", "redis")["spec"]["template"]["spec"]["containers"]
    limit = _memory_bytes(redis["resources"]["limits"]["memory"])
    assert 0 < _memory_bytes(directives["maxmemory"]) <= 0.8 * limit, "leave room for AOF rewrite"
    mounts = {mount["mountPath"] for mount in redis["volumeMounts"]}
    assert directives["dir"] in mounts


def test_storage_class_is_encrypted_expandable_ssd(builds: dict[str, list[Doc]]) -> None:
    (storage,) = of_kind(builds["cluster"], "StorageClass")
    assert storage["parameters"]["type"] == "gp3"
    assert storage["parameters"]["encrypted"] == "true"
    assert storage["allowVolumeExpansion"] is True
    for overlay in OVERLAYS:
        for stateful in of_kind(builds[f"overlays/{overlay}"], "StatefulSet"):
            for claim in stateful["spec"]["volumeClaimTemplates"]:
                assert claim["spec"]["storageClassName"] == storage["metadata"]["name"]


def test_backups_go_to_s3(builds: dict[str, list[Doc]]) -> None:
    docs = builds["overlays/production"]

    def script(name: str) -> str:
        spec = pod_spec(named(docs, "CronJob", name))
        assert spec is not None
        return " ".join(" ".join(c["command"]) for c in containers(spec))

    postgres, clickhouse = script("backup-postgres"), script("backup-clickhouse")
    assert "pg_dump" in postgres
    assert "s3://${S3_BUCKET}/backups/" in postgres
    assert re.search(r"BACKUP DATABASE \w+ TO S3\('https://\$\{S3_BUCKET\}", clickhouse)
    assert config_data(docs, "backup-config")["S3_BUCKET"] != "ursa-backups"


# --- edge --------------------------------------------------------------------------------


def _hostname_matches(listener: str | None, host: str) -> bool:
    if listener is None or listener == host:
        return True
    return (
        listener.startswith("*.")
        and host.endswith(listener[1:])
        and host.count(".") == listener.count(".")
    )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_routes_reach_services_through_the_gateway(
    builds: dict[str, list[Doc]], overlay: str
) -> None:
    docs, cluster = builds[f"overlays/{overlay}"], builds["cluster"]
    namespace_labels = named(docs, "Namespace", "ursa")["metadata"]["labels"]
    for route in of_kind(docs, "HTTPRoute"):
        name, spec = route["metadata"]["name"], route["spec"]
        for parent in spec["parentRefs"]:
            gateway = named(cluster, "Gateway", parent["name"])
            assert gateway["metadata"]["namespace"] == parent["namespace"], name
            (listener,) = [
                item
                for item in gateway["spec"]["listeners"]
                if item["name"] == parent["sectionName"]
            ]
            allowed = listener["allowedRoutes"]["namespaces"]
            assert allowed["from"] == "Selector", f"{name}: listener admits {allowed}"
            assert allowed["selector"]["matchLabels"].items() <= namespace_labels.items(), name
        for host in spec["hostnames"]:
            listeners = [
                listener
                for parent in spec["parentRefs"]
                for listener in named(cluster, "Gateway", parent["name"])["spec"]["listeners"]
                if listener["name"] == parent["sectionName"]
            ]
            assert any(_hostname_matches(item.get("hostname"), host) for item in listeners), host
        for rule in spec["rules"]:
            for backend in rule["backendRefs"]:
                service = named(docs, "Service", backend["name"])
                ports = [port["port"] for port in service["spec"]["ports"]]
                assert backend["port"] in ports, f"{name} → {backend}"


def test_certificate_covers_the_gateway_hostnames(builds: dict[str, list[Doc]]) -> None:
    cluster = builds["cluster"]
    certificate = named(cluster, "Certificate", "ursa-tls")["spec"]
    issuer = named(cluster, "ClusterIssuer", certificate["issuerRef"]["name"])
    assert issuer["spec"]["acme"]["server"].startswith("https://acme-v02.api.letsencrypt.org/")
    for listener in named(cluster, "Gateway", "public")["spec"]["listeners"]:
        if listener["protocol"] == "HTTPS":
            assert listener["hostname"] in certificate["dnsNames"]
            refs = [ref["name"] for ref in listener["tls"]["certificateRefs"]]
            assert refs == [certificate["secretName"]]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_rate_limit_is_per_ip_on_the_app_route_only(
    builds: dict[str, list[Doc]], overlay: str
) -> None:
    docs = builds[f"overlays/{overlay}"]
    tracker = named(docs, "HTTPRoute", "tracker")["spec"]["rules"]
    paths = {
        (match["path"]["type"], match["path"]["value"])
        for rule in tracker
        for match in rule["matches"]
    }
    assert paths == {("Exact", "/api/event"), ("Exact", "/js/script.js")}
    limited = {
        ref["name"]
        for policy in of_kind(docs, "BackendTrafficPolicy")
        if "rateLimit" in policy["spec"]
        for ref in policy["spec"]["targetRefs"]
    }
    assert limited == {"app"}, f"rate-limited routes: {limited}"
    policy = named(docs, "BackendTrafficPolicy", "app-rate-limit")["spec"]["rateLimit"]
    rules = policy[policy["type"].lower()]["rules"]
    selectors = [selector["sourceCIDR"] for rule in rules for selector in rule["clientSelectors"]]
    assert {ipaddress.ip_network(item["value"]).prefixlen for item in selectors} == {0}
    assert all(item["type"] == "Distinct" for item in selectors), "one bucket per client IP"


def test_external_dns_publishes_proxied_records(builds: dict[str, list[Doc]]) -> None:
    deployment = named(builds["cluster"], "Deployment", "external-dns")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    args = set(container["args"])
    assert {"--provider=cloudflare", "--cloudflare-proxied", "--source=gateway-httproute"} <= args


def test_monitoring_agent_scrapes_the_metrics_port(builds: dict[str, list[Doc]]) -> None:
    cluster, app = builds["cluster"], builds["overlays/production"]
    config = named(cluster, "ConfigMap", "alloy-config")["data"]["config.alloy"]
    assert 'metrics_path    = "/metrics"' in config
    assert 'regex         = "metrics"' in config
    assert 'names = ["ursa"]' in config
    remote = {
        item["name"]: item
        for item in named(cluster, "Deployment", "alloy")["spec"]["template"]["spec"]["containers"][
            0
        ]["env"]
    }
    for variable in re.findall(r'sys\.env\("(\w+)"\)', config):
        assert variable in remote, f"Alloy reads {variable}, which is not set"
    assert "secretKeyRef" in remote["REMOTE_WRITE_URL"]["valueFrom"]
    binding = named(app, "RoleBinding", "metrics-discovery")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "alloy", "namespace": "monitoring"}
    ]


# --- network policies --------------------------------------------------------------------


def _selects(selector: Doc, labels: dict[str, str]) -> bool:
    for expression in selector.get("matchExpressions", []):
        if (
            expression["operator"] != "In"
            or labels.get(expression["key"]) not in expression["values"]
        ):
            return False
    match_labels: dict[str, str] = selector.get("matchLabels", {})
    return match_labels.items() <= labels.items()


def _allows(rules: list[Doc], peer: Doc, port: int) -> bool:
    """Whether one of `rules` (ingress `from` / egress `to`) admits `peer` on `port`."""
    for rule in rules:
        peers = rule.get("from", rule.get("to"))
        ports = [item["port"] for item in rule.get("ports", [])]
        if ports and port not in ports:
            continue
        if peers is None or any(_peer_matches(item, peer) for item in peers):
            return True
    return False


def _peer_matches(item: Doc, peer: Doc) -> bool:
    if "ipBlock" in item:
        return "ip" in peer and ipaddress.ip_address(peer["ip"]) in ipaddress.ip_network(
            item["ipBlock"]["cidr"]
        )
    if "ip" in peer:
        return False
    namespace = item.get("namespaceSelector")
    if namespace is None and peer["namespace"] != "ursa":
        return False
    if namespace is not None and not _selects(
        namespace, {"kubernetes.io/metadata.name": peer["namespace"]}
    ):
        return False
    return _selects(item.get("podSelector", {}), peer["labels"])


def _connection_allowed(policies: list[Doc], source: Doc, target: Doc, port: int) -> bool:
    def side(pod: Doc, kind: str, other: Doc) -> bool:
        if pod.get("namespace") != "ursa":
            return True  # outside the namespace's policies
        chosen = [
            policy["spec"]
            for policy in policies
            if _selects(policy["spec"]["podSelector"], pod["labels"])
            and kind.capitalize() in policy["spec"]["policyTypes"]
        ]
        return any(_allows(spec.get(kind, []), other, port) for spec in chosen)

    return side(source, "egress", target) and side(target, "ingress", source)


def _pod(namespace: str, **labels: str) -> Doc:
    return {
        "namespace": namespace,
        "labels": {f"app.kubernetes.io/{k}": v for k, v in labels.items()},
    }


WEB = _pod("ursa", name="ursa", component="web")
WORKER = _pod("ursa", name="ursa", component="worker")
SCHEDULER = _pod("ursa", name="ursa", component="scheduler")
REDIS = _pod("ursa", name="redis")
CLICKHOUSE = _pod("ursa", name="clickhouse")
ENVOY = {"namespace": "envoy-gateway-system", "labels": {"app.kubernetes.io/name": "envoy"}}
ALLOY = _pod("monitoring", name="alloy")
RDS = {"ip": "10.0.12.34"}
INTERNET = {"ip": "8.8.8.8"}
NEEDED = [
    (ENVOY, WEB, 8000),
    (ALLOY, WEB, 8001),
    (ALLOY, WORKER, 8001),
    (ALLOY, SCHEDULER, 8001),
    (WEB, REDIS, 6379),
    (WORKER, REDIS, 6379),
    (WEB, CLICKHOUSE, 8123),
    (WORKER, CLICKHOUSE, 8123),
    (WEB, RDS, 5432),
    (WORKER, INTERNET, 587),
    (_pod("ursa", name="backup-postgres"), RDS, 5432),
    (_pod("ursa", name="backup-clickhouse"), CLICKHOUSE, 9000),
]
FORBIDDEN = [
    (ENVOY, WEB, 8001),
    (ENVOY, WORKER, 8001),
    (ENVOY, REDIS, 6379),
    (ALLOY, REDIS, 6379),
    (REDIS, INTERNET, 443),
    (WEB, INTERNET, 6379),
    (_pod("other", name="x"), CLICKHOUSE, 8123),
]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_allow_what_the_app_needs_and_nothing_more(
    builds: dict[str, list[Doc]], overlay: str
) -> None:
    policies = of_kind(builds[f"overlays/{overlay}"], "NetworkPolicy")
    deny = named(policies, "NetworkPolicy", "default-deny")["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    blocked = [(s, t, p) for s, t, p in NEEDED if not _connection_allowed(policies, s, t, p)]
    assert not blocked, f"needed but blocked: {blocked}"
    open_ = [(s, t, p) for s, t, p in FORBIDDEN if _connection_allowed(policies, s, t, p)]
    assert not open_, f"allowed but not needed: {open_}"

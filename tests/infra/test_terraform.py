"""Terraform under terraform/: formatting, `validate` against a local provider mirror, checkov,
and structural assertions on the parsed configuration.

`terraform/aws/` is initialised offline from a filesystem mirror of the hashicorp providers
(found through `TF_PROVIDER_MIRROR` or Terraform's usual plugin folders) in a temporary copy,
so no `.terraform/` folder or lock file lands in the repository. `terraform/cloudflare/` needs a
provider that is not mirrored: it is parsed with the `hcl2` module and scanned by checkov.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.infra.conftest import ROOT

TERRAFORM_DIR = ROOT / "terraform"
AWS_DIR = TERRAFORM_DIR / "aws"
CLOUDFLARE_DIR = TERRAFORM_DIR / "cloudflare"
MIRROR_ENV = "TF_PROVIDER_MIRROR"
MIRRORED_PROVIDER = Path("registry.terraform.io", "hashicorp", "aws")

Config = dict[str, Any]


# --- Tools --------------------------------------------------------------------------------


def _tool(name: str) -> str:
    """Path of a command-line tool: next to this interpreter first, then on PATH."""
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"`{name}` is not installed: run these checks with `nox -s infra`")
    return found


def _run(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT) -> str:
    """Run a command and return its stdout; fail the test with its output if it fails."""
    result = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=240, check=False
    )
    if result.returncode != 0:
        pytest.fail(f"{' '.join(args)} exited {result.returncode}:\n{result.stdout}{result.stderr}")
    return result.stdout


# --- Provider mirror ----------------------------------------------------------------------


def _mirror_candidates() -> list[Path]:
    """Folders Terraform's implied local mirrors use, then any mirror installed under /opt."""
    home = Path.home()
    data_home = Path(os.environ.get("XDG_DATA_HOME") or home / ".local" / "share")
    data_dirs = (os.environ.get("XDG_DATA_DIRS") or "/usr/local/share:/usr/share").split(":")
    implied = [home / ".terraform.d" / "plugins", data_home / "terraform" / "plugins"]
    implied += [Path(folder) / "terraform" / "plugins" for folder in data_dirs if folder]
    under_opt = [path.parent for path in sorted(Path("/opt").glob("*/registry.terraform.io"))]
    under_opt += [path.parent for path in sorted(Path("/opt").glob("*/*/registry.terraform.io"))]
    return implied + under_opt


def _provider_mirror() -> Path:
    """The filesystem mirror holding hashicorp/aws; fails with a clear message if none exists."""
    explicit = os.environ.get(MIRROR_ENV)
    if explicit:
        if not (Path(explicit) / MIRRORED_PROVIDER).is_dir():
            pytest.fail(f"{MIRROR_ENV}={explicit} has no {MIRRORED_PROVIDER} folder")
        return Path(explicit)
    candidates = _mirror_candidates()
    for candidate in candidates:
        if (candidate / MIRRORED_PROVIDER).is_dir():
            return candidate
    searched = "\n  ".join(str(candidate) for candidate in candidates)
    pytest.fail(
        f"No Terraform provider mirror holding {MIRRORED_PROVIDER} found. Searched:\n  "
        f"{searched}\nSet {MIRROR_ENV} to the folder that contains registry.terraform.io "
        "(create one with `terraform providers mirror DIR` on a machine with internet)."
    )


def _cli_config(mirror: Path, folder: Path) -> Path:
    """A Terraform CLI config that installs hashicorp providers from the mirror only."""
    path = folder / "terraform.tfrc"
    path.write_text(
        "provider_installation {\n"
        "  filesystem_mirror {\n"
        f"    path    = {json.dumps(str(mirror))}\n"
        '    include = ["registry.terraform.io/hashicorp/*"]\n'
        "  }\n"
        "  direct {\n"
        '    exclude = ["registry.terraform.io/hashicorp/*"]\n'
        "  }\n"
        "}\n"
    )
    return path


def test_terraform_is_formatted() -> None:
    _run(_tool("terraform"), "fmt", "-check", "-recursive", "-diff", str(TERRAFORM_DIR))


def test_aws_configuration_validates_offline(tmp_path: Path) -> None:
    """init + validate in a copy: `.terraform/` and the lock file never land in the repository."""
    workdir = tmp_path / "aws"
    shutil.copytree(AWS_DIR, workdir, ignore=shutil.ignore_patterns(".terraform"))
    env = {
        **os.environ,
        "TF_CLI_CONFIG_FILE": str(_cli_config(_provider_mirror(), tmp_path)),
        "TF_DATA_DIR": str(tmp_path / "data"),
        "TF_IN_AUTOMATION": "1",
        "TF_INPUT": "0",
        "CHECKPOINT_DISABLE": "1",
    }
    terraform = _tool("terraform")
    _run(terraform, "init", "-backend=false", "-no-color", env=env, cwd=workdir)
    output = _run(terraform, "validate", "-json", "-no-color", env=env, cwd=workdir)
    report = json.loads(output)
    assert report["valid"] is True, report
    assert report["warning_count"] == 0, report["diagnostics"]


# --- checkov ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkov_results() -> Config:
    """checkov's JSON report over terraform/ (one framework: one report).

    `--soft-fail` keeps the exit code 0 on failed checks, so the test lists them by id.
    """
    output = _run(
        _tool("checkov"),
        "-d",
        str(TERRAFORM_DIR),
        "--framework",
        "terraform",
        "--skip-download",
        "--soft-fail",
        "--output",
        "json",
    )
    report = json.loads(output)
    assert isinstance(report, dict), "expected a single terraform report from checkov"
    return report


def test_checkov_reports_no_failed_checks(checkov_results: Config) -> None:
    failed = [
        f"{check['check_id']} {check['resource']} ({check['file_path']})"
        for check in checkov_results["results"]["failed_checks"]
    ]
    assert failed == []
    assert checkov_results["summary"]["parsing_errors"] == 0
    assert checkov_results["summary"]["passed"] > 100


def test_checkov_skips_are_justified(checkov_results: Config) -> None:
    skipped = checkov_results["results"]["skipped_checks"]
    unjustified = [
        check["check_id"]
        for check in skipped
        if len(check["check_result"].get("suppress_comment", "").strip()) < 20
    ]
    assert skipped, "expected the documented skips (KMS key policies, access-log bucket)"
    assert unjustified == []


# --- Parsed configuration -----------------------------------------------------------------


def _unquote(value: str) -> str:
    """python-hcl2 keeps the quotes of string literals and labels; drop them."""
    quoted = len(value) >= 2 and value.startswith('"') and value.endswith('"')
    return value[1:-1] if quoted else value


def _plain(value: Any) -> Any:
    """The parser's output without quotes and bookkeeping keys (`__start_line__`, ...)."""
    if isinstance(value, dict):
        return {
            _unquote(key): _plain(item)
            for key, item in value.items()
            if not (key.startswith("__") and key.endswith("__"))
        }
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return _unquote(value) if isinstance(value, str) else value


@functools.cache
def _hcl2() -> Any:
    """The `hcl2` module: python-hcl2, or checkov's fork of it (bc-python-hcl2)."""
    return importlib.import_module("hcl2")


@functools.cache
def _wraps_values() -> bool:
    """Whether the parser wraps every attribute value in a list (the bc-python-hcl2 flavour)."""
    return bool(_hcl2().loads("a = 1\n")["a"] == [1])


def _load(folder: Path) -> dict[str, list[Config]]:
    """Every top-level block of a folder's .tf files, by block type."""
    blocks: dict[str, list[Config]] = {}
    for path in sorted(folder.glob("*.tf")):
        with path.open() as handle:
            for kind, entries in _plain(_hcl2().load(handle)).items():
                blocks.setdefault(kind, []).extend(entries)
    return blocks


def _attr(body: Config, name: str) -> Any:
    """An attribute's value, whichever the parser's flavour."""
    value = body[name]
    return value[0] if _wraps_values() else value


def _blocks(body: Config, name: str) -> list[Config]:
    """The nested blocks called `name` in a block body."""
    found = body.get(name, [])
    return found if isinstance(found, list) else [found]


class Module:
    """One parsed Terraform folder, with lookups by resource address and simple resolution."""

    def __init__(self, folder: Path) -> None:
        self.blocks = _load(folder)

    def labelled(self, block: str, kind: str) -> dict[str, Config]:
        """Bodies of `BLOCK "KIND" "NAME"` blocks (resource, data), by name."""
        return {
            name: body
            for entry in self.blocks.get(block, [])
            for type_, named in entry.items()
            if type_ == kind
            for name, body in named.items()
        }

    def resources(self, kind: str) -> dict[str, Config]:
        """Resources of one type, by name."""
        return self.labelled("resource", kind)

    def resource(self, kind: str, name: str) -> Config:
        """One resource's body; fails if it is missing."""
        found = self.resources(kind)
        assert name in found, f"{kind}.{name} is missing"
        return found[name]

    def policy_document(self, name: str) -> Config:
        """The body of one `aws_iam_policy_document` data source."""
        found = self.labelled("data", "aws_iam_policy_document")
        assert name in found, f"data.aws_iam_policy_document.{name} is missing"
        return found[name]

    def locals(self) -> Config:
        """Every local value, by name."""
        return {key: _attr(entry, key) for entry in self.blocks["locals"] for key in entry}

    def variable(self, name: str) -> Config:
        """The body of one variable block."""
        for entry in self.blocks["variable"]:
            if name in entry:
                body: Config = entry[name]
                return body
        raise AssertionError(f"variable {name} is missing")

    def variable_default(self, name: str) -> Any:
        """A variable's default value."""
        return _attr(self.variable(name), "default")

    def resolve(self, value: Any) -> Any:
        """A literal, `var.NAME` (its default) or `local.NAME` reference, resolved."""
        if isinstance(value, str) and value.startswith("${var."):
            return self.variable_default(value.removeprefix("${var.").removesuffix("}"))
        if isinstance(value, str) and value.startswith("${local."):
            return self.resolve(self.locals()[value.removeprefix("${local.").removesuffix("}")])
        return value


@pytest.fixture(scope="module")
def aws() -> Module:
    return Module(AWS_DIR)


@pytest.fixture(scope="module")
def cloudflare() -> Module:
    return Module(CLOUDFLARE_DIR)


def test_vpc_spans_three_availability_zones(aws: Module) -> None:
    assert len(set(aws.variable_default("availability_zone_suffixes"))) == 3
    for kind in ("public", "private"):
        subnet = aws.resource("aws_subnet", kind)
        assert _attr(subnet, "count") == 3
        assert _attr(subnet, "availability_zone") == "${local.azs[count.index]}"
    assert _attr(aws.resource("aws_subnet", "public"), "map_public_ip_on_launch") is False


def test_cluster_and_database_live_in_private_subnets(aws: Module) -> None:
    cluster = aws.resource("aws_eks_cluster", "this")
    (vpc_config,) = _blocks(cluster, "vpc_config")
    private = "${aws_subnet.private[*].id}"
    assert _attr(vpc_config, "subnet_ids") == private
    assert _attr(aws.resource("aws_eks_node_group", "default"), "subnet_ids") == private
    assert _attr(aws.resource("aws_db_subnet_group", "this"), "subnet_ids") == private
    assert aws.resolve(_attr(vpc_config, "endpoint_public_access")) is not True


def test_eks_secrets_are_envelope_encrypted_with_kms(aws: Module) -> None:
    cluster = aws.resource("aws_eks_cluster", "this")
    (encryption,) = _blocks(cluster, "encryption_config")
    assert _attr(encryption, "resources") == ["secrets"]
    (provider,) = _blocks(encryption, "provider")
    assert _attr(provider, "key_arn").startswith("${aws_kms_key.")
    log_types = aws.resolve(_attr(cluster, "enabled_cluster_log_types"))
    assert set(log_types) == {"api", "audit", "authenticator", "controllerManager", "scheduler"}


def test_rds_is_private_encrypted_and_protected(aws: Module) -> None:
    db = aws.resource("aws_db_instance", "this")
    assert _attr(db, "storage_encrypted") is True
    assert _attr(db, "publicly_accessible") is False
    assert _attr(db, "deletion_protection") is True
    assert _attr(db, "kms_key_id").startswith("${aws_kms_key.")
    assert _attr(db, "performance_insights_kms_key_id").startswith("${aws_kms_key.")
    assert aws.resolve(_attr(db, "backup_retention_period")) >= 7


def test_ecr_tags_are_immutable_and_scanned(aws: Module) -> None:
    repository = aws.resource("aws_ecr_repository", "ursa")
    assert _attr(repository, "image_tag_mutability") == "IMMUTABLE"
    (scanning,) = _blocks(repository, "image_scanning_configuration")
    assert _attr(scanning, "scan_on_push") is True
    (encryption,) = _blocks(repository, "encryption_configuration")
    assert _attr(encryption, "encryption_type") == "KMS"
    assert "aws_ecr_repository.ursa.name" in _attr(
        aws.resource("aws_ecr_lifecycle_policy", "ursa"), "repository"
    )


def _covers_backups(module: Module, kind: str) -> Config:
    """A resource created for each bucket of `local.buckets`, which must include the backup one."""
    body = module.resource(kind, "this")
    buckets = module.resolve(_attr(body, "for_each"))
    assert buckets["backups"] == "${aws_s3_bucket.backups}", f"{kind} misses the backup bucket"
    assert _attr(body, "bucket") == "${each.value.id}"
    return body


def test_backup_bucket_is_versioned_and_expires_backups_after_30_days(aws: Module) -> None:
    versioning = _covers_backups(aws, "aws_s3_bucket_versioning")
    (status,) = _blocks(versioning, "versioning_configuration")
    assert _attr(status, "status") == "Enabled"
    lifecycle = aws.resource("aws_s3_bucket_lifecycle_configuration", "backups")
    assert _attr(lifecycle, "bucket") == "${aws_s3_bucket.backups.id}"
    expiring = [
        (aws.resolve(_attr(filter_, "prefix")), aws.resolve(_attr(expiration, "days")))
        for rule in _blocks(lifecycle, "rule")
        if _attr(rule, "status") == "Enabled"
        for filter_ in _blocks(rule, "filter")
        if "prefix" in filter_
        for expiration in _blocks(rule, "expiration")
        if "days" in expiration
    ]
    assert expiring == [("backups/", 30)]


def test_backup_bucket_is_private_kms_encrypted_and_tls_only(aws: Module) -> None:
    block = _covers_backups(aws, "aws_s3_bucket_public_access_block")
    flags = ("block_public_acls", "block_public_policy", "ignore_public_acls")
    assert all(_attr(block, flag) is True for flag in (*flags, "restrict_public_buckets"))
    encryption = aws.resource("aws_s3_bucket_server_side_encryption_configuration", "backups")
    (rule,) = _blocks(encryption, "rule")
    (default,) = _blocks(rule, "apply_server_side_encryption_by_default")
    assert _attr(default, "sse_algorithm") == "aws:kms"
    policies = aws.resolve(_attr(aws.resource("aws_s3_bucket_policy", "this"), "for_each"))
    assert policies["backups"] == '${data.aws_iam_policy_document.tls_only["backups"].json}'
    (dynamic,) = _blocks(aws.policy_document("tls_only"), "dynamic")
    statement = dynamic["statement"]
    (content,) = _blocks(statement, "content")
    assert _attr(content, "effect") == "Deny"
    assert _attr(content, "resources") == ["${each.value.arn}", "${each.value.arn}/*"]
    denials = _attr(statement, "for_each")
    assert denials["DenyInsecureTransport"]["variable"] == "aws:SecureTransport"
    assert denials["DenyInsecureTransport"]["value"] == "false"


def test_backup_role_is_assumed_by_the_backup_service_accounts(aws: Module) -> None:
    role = aws.resource("aws_iam_role", "backup")
    assert _attr(role, "assume_role_policy") == "${data.aws_iam_policy_document.backup_assume.json}"
    (statement,) = _blocks(aws.policy_document("backup_assume"), "statement")
    assert _attr(statement, "actions") == ["sts:AssumeRoleWithWebIdentity"]
    subjects = [
        _attr(condition, "values")
        for condition in _blocks(statement, "condition")
        if _attr(condition, "variable").endswith(":sub")
    ]
    assert len(subjects) == 1
    assert "system:serviceaccount:${var.app_namespace}:${account}" in subjects[0]
    assert aws.variable_default("app_namespace") == "ursa"
    assert set(aws.variable_default("backup_service_accounts")) == {"backup", "clickhouse"}


def test_cloudflare_records_are_proxied_for_app_and_ingest(cloudflare: Module) -> None:
    records = cloudflare.resources("cloudflare_dns_record")
    assert records, "no cloudflare_dns_record resources"
    for body in records.values():
        assert _attr(body, "proxied") is True
    (record,) = records.values()
    assert _attr(record, "for_each") == "${var.hostnames}"
    hosts_type = _attr(cloudflare.variable("hostnames"), "type")
    assert hosts_type.startswith("${object(")
    assert re.findall(r"\b(app|ingest)\b", hosts_type) == ["app", "ingest"]


def test_cloudflare_zone_enforces_strict_tls(cloudflare: Module) -> None:
    setting = cloudflare.resource("cloudflare_zone_setting", "this")
    settings = cloudflare.resolve(_attr(setting, "for_each"))
    assert settings["ssl"] == "strict"
    assert settings["always_use_https"] == "on"
    assert settings["min_tls_version"] == "1.2"

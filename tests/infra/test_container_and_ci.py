"""The container image (Dockerfile, .dockerignore) and the CI workflow (.github/).

hadolint and actionlint lint them (each is also shown a known-bad file, so a linter that checks
nothing cannot pass); structural checks pin down what deployments rely on: one image for every
process, non-root, no build tools; CI runs the noxfile's own sessions, with pinned actions and
write access only where the image is pushed.
"""

from __future__ import annotations

import ast
import fnmatch
import json
import re
import shlex
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

from tests.infra.conftest import ROOT
from tests.infra.render import find_tool

DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
WORKFLOWS = ROOT / ".github" / "workflows"
CI = WORKFLOWS / "ci.yml"
LOCAL_ACTIONS = ROOT / ".github" / "actions"
NOXFILE = ROOT / "noxfile.py"

CHECK_JOBS = ("lint", "typecheck", "tests", "e2e", "infra")
# A remote action or reusable workflow pinned to a full version or a commit SHA.
PINNED_USES = re.compile(r"^[\w.-]+/[\w./-]+@(v\d+\.\d+\.\d+|[0-9a-f]{40})$")
# A container image pinned to a version (major.minor at least), never a floating tag.
PINNED_IMAGE = re.compile(r"^[\w./-]+:\d+\.\d+[\w.-]*$")


# --- tools -------------------------------------------------------------------------------------


def run_tool(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def hadolint(dockerfile: Path) -> subprocess.CompletedProcess[str]:
    return run_tool(find_tool("hadolint"), "--no-color", str(dockerfile))


def actionlint(root: Path) -> subprocess.CompletedProcess[str]:
    """actionlint on the workflows of `root`, with shellcheck on `run:` scripts when present."""
    try:
        shellcheck = str(find_tool("shellcheck"))
    except FileNotFoundError:
        shellcheck = ""  # actionlint then skips its checks of the `run:` scripts
    workflows = sorted(str(p) for p in (root / ".github" / "workflows").glob("*.y*ml"))
    assert workflows, f"no workflow under {root}"
    flags = ("-no-color", f"-shellcheck={shellcheck}", "-pyflakes=")
    return run_tool(find_tool("actionlint"), *flags, *workflows, cwd=root)


def github_repository(folder: Path, major_tags: bool = False) -> Path:
    """A git repository in `folder` holding a copy of `.github/` (actionlint resolves local
    actions only inside one). `major_tags` turns `@v1.2.3` into `@v1`: actionlint knows the
    inputs of popular actions by major version only, so this is how their inputs get checked."""
    shutil.copytree(ROOT / ".github", folder / ".github")
    if major_tags:
        for path in (folder / ".github").rglob("*.y*ml"):
            path.write_text(re.sub(r"@v(\d+)\.\d+\.\d+\b", r"@v\1", path.read_text()))
    subprocess.run([find_tool("git"), "init", "-q", str(folder)], check=True, timeout=30)
    return folder


# --- Dockerfile parsing ------------------------------------------------------------------------


@dataclass
class Instruction:
    keyword: str
    args: str


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def args_of(self, keyword: str) -> list[str]:
        return [i.args for i in self.instructions if i.keyword == keyword]


def instructions(text: str) -> Iterator[Instruction]:
    """Dockerfile instructions with continuation lines joined and comments dropped."""
    logical = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        logical += stripped[:-1] + " " if stripped.endswith("\\") else stripped
        if not stripped.endswith("\\"):
            keyword, _, args = logical.partition(" ")
            yield Instruction(keyword.upper(), " ".join(args.split()))
            logical = ""


def global_args(text: str) -> dict[str, str]:
    """Defaults of the ARGs declared before the first FROM (usable in FROM lines)."""
    found: dict[str, str] = {}
    for instruction in instructions(text):
        if instruction.keyword == "FROM":
            break
        if instruction.keyword == "ARG" and "=" in instruction.args:
            name, _, value = instruction.args.partition("=")
            found[name] = value.strip('"')
    return found


def stages(text: str) -> list[Stage]:
    defaults = global_args(text)
    found: list[Stage] = []
    for instruction in instructions(text):
        if instruction.keyword == "FROM":
            words = [w for w in instruction.args.split() if not w.startswith("--")]
            base = re.sub(r"\$\{(\w+)\}", lambda m: defaults.get(m[1], m[0]), words[0])
            name = words[2] if len(words) > 2 and words[1].upper() == "AS" else None
            found.append(Stage(base, name))
        elif found:
            found[-1].instructions.append(instruction)
    return found


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return DOCKERFILE.read_text()


@pytest.fixture(scope="module")
def final_stage(dockerfile: str) -> Stage:
    return stages(dockerfile)[-1]


def env_of(stage: Stage) -> dict[str, str]:
    """ENV key=value pairs of a stage (the `key=value` form only)."""
    found: dict[str, str] = {}
    for args in stage.args_of("ENV"):
        for pair in shlex.split(args):
            key, _, value = pair.partition("=")
            found[key] = value
    return found


def uv_sync_commands(dockerfile: str) -> list[str]:
    return [i.args for i in instructions(dockerfile) if i.keyword == "RUN" and "uv sync" in i.args]


# --- Dockerfile tests --------------------------------------------------------------------------


def test_hadolint_passes_on_the_dockerfile() -> None:
    result = hadolint(DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_rejects_a_floating_base_image(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install ursa\n")
    result = hadolint(bad)
    assert result.returncode != 0
    assert "DL3007" in result.stdout


def test_image_is_multi_stage_on_a_pinned_slim_python_311(dockerfile: str) -> None:
    built = stages(dockerfile)
    assert len(built) >= 3, "expected uv, builder and runtime stages"
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", built[-1].base), built[-1].base
    assert re.fullmatch(r"ghcr\.io/astral-sh/uv:\d+\.\d+\.\d+", built[0].base), built[0].base


def test_builder_installs_the_locked_dependencies_without_dev(dockerfile: str) -> None:
    commands = uv_sync_commands(dockerfile)
    assert commands, "the builder must run `uv sync`"
    for command in commands:
        assert "--frozen" in command, command
        assert "--no-dev" in command, command


def test_packages_left_out_of_the_image_are_needed_by_nothing_else(dockerfile: str) -> None:
    """Each `--no-install-package` (chDB and what only chDB needs) breaks no other package."""
    lock = tomllib.loads((ROOT / "uv.lock").read_text())["package"]
    left_out = set(re.findall(r"--no-install-package (\S+)", uv_sync_commands(dockerfile)[-1]))
    assert "chdb" in left_out
    for command in uv_sync_commands(dockerfile):
        assert set(re.findall(r"--no-install-package (\S+)", command)) == left_out, command
    for package in lock:
        needs = {dependency["name"] for dependency in package.get("dependencies", [])}
        if package["name"] not in left_out and package["name"] != "ursa":
            assert not needs & left_out, f"{package['name']} needs {needs & left_out}"
    assert left_out <= {package["name"] for package in lock}, "unknown package left out"


def test_final_stage_has_no_build_tools(final_stage: Stage) -> None:
    for args in final_stage.args_of("RUN"):
        assert not re.search(r"\b(apt-get|apt|pip|uv|gcc|make)\b", args), args
    for args in final_stage.args_of("COPY"):
        assert "--from=uv" not in args, args


def test_final_stage_runs_as_a_fixed_non_root_uid(final_stage: Stage) -> None:
    users = final_stage.args_of("USER")
    assert users, "the final stage must set USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit(), f"USER {users[-1]}: use a fixed numeric UID"
    assert int(uid) >= 1000, f"USER {users[-1]}: not a system or root UID"
    run = " ".join(final_stage.args_of("RUN"))
    assert f"--uid {uid}" in run, "the USER's UID must be created with that fixed UID"


def test_one_image_runs_every_process(final_stage: Stage) -> None:
    assert json.loads(final_stage.args_of("ENTRYPOINT")[-1]) == ["ursa"]
    assert json.loads(final_stage.args_of("CMD")[-1]) == ["web"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "ursa" in scripts, "ENTRYPOINT ursa must be a [project.scripts] entry point"


def test_runtime_environment(final_stage: Stage) -> None:
    env = env_of(final_stage)
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["HOST"] == "0.0.0.0", "the web port must listen beyond the container's loopback"
    assert env["RELEASE"] == "${RELEASE}", "the RELEASE build arg must end up in env RELEASE"
    assert any(a.startswith("RELEASE") for a in final_stage.args_of("ARG"))
    assert "/.venv/bin" in env["PATH"]
    exposed = {port for args in final_stage.args_of("EXPOSE") for port in args.split()}
    assert {"8000", "8001"} <= exposed


def test_oci_labels(final_stage: Stage) -> None:
    labels = dict(
        pair.partition("=")[::2]
        for args in final_stage.args_of("LABEL")
        for pair in shlex.split(args)
    )
    required = ("title", "source", "version", "revision", "created", "licenses")
    for name in required:
        assert f"org.opencontainers.image.{name}" in labels, name
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert labels["org.opencontainers.image.licenses"] == project["license"]


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule for a path in the build context: the last matching pattern wins."""
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    ignored = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        glob = pattern.lstrip("!").strip("/").replace("**/", "*")
        if any(fnmatch.fnmatch(prefix, glob) for prefix in prefixes):
            ignored = not negated
    return ignored


def test_build_context_holds_only_what_the_image_needs(dockerfile: str) -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for kept_out in (".git", ".venv", ".nox", "data", "test-artifacts", "tests", ".env"):
        assert dockerignored(kept_out, patterns), f"{kept_out} would enter the build context"
    assert dockerignored("app/__pycache__/main.cpython-311.pyc", patterns)
    copied = [
        source
        for i in instructions(dockerfile)
        if i.keyword == "COPY" and "--from" not in i.args
        for source in i.args.split()[:-1]
    ]
    bound = re.findall(r"--mount=type=bind,source=([^,\s]+)", dockerfile)
    for source in [*copied, *bound]:
        assert (ROOT / source).exists(), f"the Dockerfile copies a missing {source}"
        assert not dockerignored(source, patterns), f".dockerignore hides {source}"


# --- workflow parsing --------------------------------------------------------------------------


def load_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), f"{path} is not a YAML mapping"
    return data


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    return load_yaml(CI)


@pytest.fixture(scope="module")
def jobs(workflow: dict[str, Any]) -> dict[str, Any]:
    jobs: dict[str, Any] = workflow["jobs"]
    return jobs


def triggers(workflow: dict[str, Any]) -> dict[str, Any]:
    """The workflow's `on:` mapping (YAML 1.1 reads a bare `on` key as True)."""
    keys: dict[Any, Any] = workflow
    events = keys.get("on", keys.get(True))
    assert isinstance(events, dict), "`on:` must map events to their filters"
    return events


def steps_of(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Steps of every job of a workflow, or of a composite action."""
    for job in document.get("jobs", {}).values():
        yield from job.get("steps", [])
    yield from document.get("runs", {}).get("steps", [])


def automation_files() -> list[Path]:
    return sorted([*WORKFLOWS.glob("*.y*ml"), *LOCAL_ACTIONS.glob("*/action.y*ml")])


def image_job(jobs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    pushing = [
        (name, job)
        for name, job in jobs.items()
        if any(str(s.get("uses", "")).startswith("docker/build-push-action@") for s in job["steps"])
    ]
    assert len(pushing) == 1, "expected exactly one job that builds and pushes the image"
    return pushing[0]


def nox_sessions() -> dict[str, list[str]]:
    """Sessions of noxfile.py: name → the parameter values of `@nox.parametrize`, if any."""
    found: dict[str, list[str]] = {}
    for node in ast.parse(NOXFILE.read_text()).body:
        if not isinstance(node, ast.FunctionDef):
            continue
        decorators = [ast.unparse(d) for d in node.decorator_list]
        if any(d == "nox.session" or d.startswith("nox.session(") for d in decorators):
            found[node.name] = [
                value.value
                for d in node.decorator_list
                if isinstance(d, ast.Call) and ast.unparse(d.func) == "nox.parametrize"
                for value in ast.walk(d.args[1])
                if isinstance(value, ast.Constant) and isinstance(value.value, str)
            ]
    return found


def invoked_sessions(script: str) -> list[str]:
    """Session names a `run:` script passes to nox (`-s`/`--session`/`--sessions`)."""
    sessions: list[str] = []
    for line in script.splitlines():
        words = shlex.split(line, comments=True)
        if "nox" not in words:
            continue
        after = words[words.index("nox") + 1 :]
        flags = [n for n, word in enumerate(after) if word in ("-s", "--session", "--sessions")]
        assert flags, f"name the sessions explicitly: {line.strip()}"
        for word in after[flags[0] + 1 :]:
            if word.startswith("-"):
                break
            sessions.append(word)
    return sessions


# --- workflow tests ----------------------------------------------------------------------------


def test_actionlint_passes_on_the_workflows(tmp_path: Path) -> None:
    result = actionlint(github_repository(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_accepts_the_inputs_given_to_each_action(tmp_path: Path) -> None:
    result = actionlint(github_repository(tmp_path, major_tags=True))
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_rejects_a_broken_workflow(tmp_path: Path) -> None:
    repository = github_repository(tmp_path, major_tags=True)
    broken = repository / ".github" / "workflows" / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    needs: [missing]\n"
        "    steps:\n      - uses: actions/checkout@v6\n        with:\n          depth: 1\n"
        "      - uses: ./.github/actions/setup-uv\n        with:\n          python: '3.11'\n"
    )
    result = actionlint(repository)
    assert result.returncode != 0
    for mistake in ('"missing"', '"depth" is not defined', '"python" is not defined'):
        assert mistake in result.stdout, f"actionlint missed {mistake}: {result.stdout}"


def test_ci_runs_on_pushes_to_main_and_pull_requests(workflow: dict[str, Any]) -> None:
    events = triggers(workflow)
    assert "main" in events["push"]["branches"]
    assert "pull_request" in events


def test_superseded_runs_are_cancelled(workflow: dict[str, Any]) -> None:
    concurrency = workflow["concurrency"]
    assert "github.ref" in concurrency["group"]
    assert concurrency["cancel-in-progress"] is True


def test_every_check_has_a_job_with_a_timeout(jobs: dict[str, Any]) -> None:
    for name in CHECK_JOBS:
        assert name in jobs, f"no {name} job"
    for name, job in jobs.items():
        assert 0 < job.get("timeout-minutes", 0) <= 60, f"{name}: set timeout-minutes"


def test_check_jobs_run_the_noxfile_sessions_of_their_name(jobs: dict[str, Any]) -> None:
    for name in CHECK_JOBS:
        invoked = [
            s.split("(")[0]
            for step in jobs[name]["steps"]
            for s in invoked_sessions(step.get("run", ""))
        ]
        assert invoked == [name], f"job {name} runs sessions {invoked}"


def test_every_nox_session_in_ci_exists_in_the_noxfile(jobs: dict[str, Any]) -> None:
    sessions = nox_sessions()
    assert {"lint", "typecheck", "tests", "e2e", "infra"} <= sessions.keys()
    for path in automation_files():
        for step in steps_of(load_yaml(path)):
            for invoked in invoked_sessions(step.get("run", "")):
                name = invoked.split("(")[0]
                assert name in sessions, f"{path.name}: nox has no session {name!r}"
    matrix = jobs["tests"]["strategy"]["matrix"]["db"]
    assert sorted(matrix) == sorted(sessions["tests"]), "CI must run every tests(db=...) variant"


def test_tests_job_has_postgres_and_redis_server(jobs: dict[str, Any]) -> None:
    job = jobs["tests"]
    image = job["services"]["postgres"]["image"]
    assert image.startswith("postgres:"), image
    url = job["env"]["URSA_TEST_POSTGRES_URL"]
    assert url.startswith("postgresql+asyncpg://")
    assert ":5432/" in url
    assert "5432:5432" in job["services"]["postgres"]["ports"]
    scripts = " ".join(step.get("run", "") for step in job["steps"])
    assert re.search(r"apt-get install .*\bredis-server\b", scripts)


def test_e2e_job_has_chromium_and_the_npm_clients(jobs: dict[str, Any]) -> None:
    steps = jobs["e2e"]["steps"]
    scripts = " ".join(step.get("run", "") for step in steps)
    assert re.search(r"apt-get install .*\bchromium\b", scripts)
    npm = [s for s in steps if "npm ci" in s.get("run", "")]
    assert npm, "the e2e job must install the npm test clients"
    assert npm[0].get("working-directory") == "tests/e2e/npm"
    assert (ROOT / "tests/e2e/npm/package-lock.json").exists()


def test_only_the_image_job_may_write_and_only_after_the_checks(workflow: dict[str, Any]) -> None:
    jobs = workflow["jobs"]
    assert workflow["permissions"] == {"contents": "read"}
    name, job = image_job(jobs)
    assert job["permissions"] == {"contents": "read", "id-token": "write"}
    condition = job["if"]
    assert "github.event_name == 'push'" in condition, "never on pull requests"
    assert "github.ref == 'refs/heads/main'" in condition
    assert set(job["needs"]) >= set(CHECK_JOBS), "push an image only after every check passed"
    for other, other_job in jobs.items():
        if other != name:
            assert "permissions" not in other_job, f"{other} must keep the read-only default"


def image_outputs(job: dict[str, Any], tmp_path: Path) -> dict[str, str]:
    """Run the image job's `meta` step script as CI would, on this checkout's HEAD commit."""
    script = next(s for s in job["steps"] if s.get("id") == "meta")["run"]
    head = run_tool(find_tool("git"), "rev-parse", "HEAD").stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{40}", head), "these checks run in a git checkout"
    outputs = tmp_path / "github_output"
    env = {"GITHUB_OUTPUT": str(outputs), "GITHUB_SHA": head, "REGISTRY": "registry.example"}
    result = subprocess.run(
        [find_tool("bash"), "-euo", "pipefail", "-c", script],
        cwd=ROOT,
        env={**env, **job["env"], "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return dict(line.split("=", 1) for line in outputs.read_text().splitlines())


def test_image_tags_fit_the_registry_and_flux(jobs: dict[str, Any], tmp_path: Path) -> None:
    """Tags: the commit SHA and a Flux-sortable tag that the staging ImagePolicy accepts, in the
    ECR repository that terraform/aws creates."""
    _, job = image_job(jobs)
    build = next(s for s in job["steps"] if s.get("uses", "").startswith("docker/build-push-"))
    assert build["with"]["push"] is True
    assert "RELEASE=${{ github.sha }}" in build["with"]["build-args"]
    tags = build["with"]["tags"].splitlines()
    assert "${{ steps.meta.outputs.image }}:${{ github.sha }}" in tags
    assert "${{ steps.meta.outputs.image }}:${{ steps.meta.outputs.flux_tag }}" in tags
    outputs = image_outputs(job, tmp_path)
    assert outputs["image"] == f"registry.example/{job['env']['ECR_REPOSITORY']}"
    terraform = " ".join(p.read_text() for p in (ROOT / "terraform" / "aws").glob("*.tf"))
    repositories = re.findall(r'"aws_ecr_repository" "\w+" \{\s*name\s*=\s*"([^"]+)"', terraform)
    assert repositories == [job["env"]["ECR_REPOSITORY"]], (
        "push to the ECR repository terraform makes"
    )
    overlays = " ".join(p.read_text() for p in (ROOT / "k8s").rglob("*.yaml"))
    patterns = re.findall(r"filterTags:\s*pattern:\s*['\"]?([^'\"\n]+)", overlays)
    assert patterns, "no Flux ImagePolicy with filterTags under k8s/"
    for pattern in patterns:
        assert re.fullmatch(pattern, outputs["flux_tag"]), f"{outputs['flux_tag']} !~ {pattern}"


def test_release_tags_promote_the_tested_image(workflow: dict[str, Any]) -> None:
    assert "v*.*.*" in triggers(workflow)["push"]["tags"]
    _, job = image_job(workflow["jobs"])
    promote = [s for s in job["steps"] if "imagetools create" in s.get("run", "")]
    assert promote, "a version tag must retag the commit's image, not rebuild it"
    assert "refs/tags/v" in promote[0]["if"]
    assert '"${IMAGE}:${GITHUB_SHA}"' in promote[0]["run"]


def test_every_action_and_image_is_pinned() -> None:
    files = automation_files()
    assert CI in files
    for path in files:
        document = load_yaml(path)
        for step in steps_of(document):
            uses = step.get("uses")
            if uses is not None and not uses.startswith("./"):
                assert PINNED_USES.match(uses), f"{path.name}: pin {uses} to a version or SHA"
            if uses is not None and uses.startswith("./"):
                assert (ROOT / uses / "action.yml").exists(), f"{path.name}: no action at {uses}"
        for name, job in document.get("jobs", {}).items():
            containers = [job.get("container", {}), *job.get("services", {}).values()]
            for container in containers:
                image = container.get("image") if isinstance(container, dict) else container
                if image:
                    assert PINNED_IMAGE.match(image), f"{path.name} {name}: pin image {image}"


def test_ci_and_image_use_the_same_uv_and_python(dockerfile: str, jobs: dict[str, Any]) -> None:
    built = stages(dockerfile)
    setup = load_yaml(LOCAL_ACTIONS / "setup-uv" / "action.yml")
    uv_step = next(s for s in steps_of(setup) if s["uses"].startswith("astral-sh/setup-uv@"))
    assert built[0].base == f"ghcr.io/astral-sh/uv:{uv_step['with']['version']}"
    assert jobs["e2e"]["container"]["image"] == built[-1].base

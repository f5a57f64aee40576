"""Shared benchmark plumbing: figures, free ports, child processes, memory of a process tree."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import redis

from app.server.embedded_redis import redis_server_binary

ROOT = Path(__file__).resolve().parents[1]
LOOPBACK = "127.0.0.1"


@dataclass
class Figure:
    """One measured number, with the target it is held against (if any)."""

    section: str
    name: str
    value: float
    unit: str
    target: str = ""
    met: bool | None = None
    note: str = ""

    def line(self) -> str:
        shown = f"{self.value:,.0f}" if abs(self.value) >= 100 else f"{self.value:,.3g}"
        verdict = "" if self.met is None else ("  [target met]" if self.met else "  [MISSED]")
        target = f"  (target {self.target})" if self.target else ""
        note = f"  - {self.note}" if self.note else ""
        return f"  {self.name:<44} {shown:>12} {self.unit:<10}{target}{verdict}{note}"


def say(text: str) -> None:
    print(text, flush=True)


def emit(figures: list[Figure], figure: Figure) -> None:
    figures.append(figure)
    say(figure.line())


def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) by nearest rank; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))
    return ordered[index]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def python_env(**extra: str) -> dict[str, str]:
    """The environment for child processes: this checkout importable, no stray settings."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("URSA_", "REDIS_", "CLICKHOUSE_", "DATABASE_", "CACHE_REDIS_"))
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    env.update(extra)
    return env


def ursa_command() -> list[str]:
    """How to run the `ursa` command of this environment."""
    script = Path(sys.executable).with_name("ursa")
    if script.exists():
        return [str(script)]
    found = shutil.which("ursa")
    return [found] if found else [sys.executable, "-c", "from app.cli.commands import main; main()"]


def run_section_process(module: str, args: Sequence[str], timeout: float) -> dict[str, Any]:
    """Run `python -m <module> ... --json-out FILE` (its own process: one chDB per process)."""
    with tempfile.TemporaryDirectory(prefix="ursa-bench-out-") as folder:
        out = Path(folder) / "figures.json"
        command = [sys.executable, "-m", module, *args, "--json-out", str(out)]
        subprocess.run(command, env=python_env(), cwd=ROOT, check=True, timeout=timeout)
        result: dict[str, Any] = json.loads(out.read_text())
    return result


def write_figures(path: str, figures: list[Figure]) -> None:
    Path(path).write_text(json.dumps([asdict(figure) for figure in figures]))


def read_figures(data: Any) -> list[Figure]:
    return [Figure(**item) for item in data]


def wait_http(
    url: str, timeout: float = 60.0, process: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before {url} answered")
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def stop(process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """SIGTERM, wait, then SIGKILL: only the process we started."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def redis_server(folder: Path, *, aof: bool = True) -> Iterator[str]:
    """A redis-server on a free loopback port (AOF like the embedded one); yields its URL."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    args = [
        redis_server_binary(),
        "--port",
        str(port),
        "--bind",
        LOOPBACK,
        "--dir",
        str(folder),
        "--appendonly",
        "yes" if aof else "no",
        "--appendfsync",
        "everysec",
        "--save",
        "",
        "--maxmemory-policy",
        "noeviction",
        "--logfile",
        str(folder / "redis.log"),
    ]
    process = subprocess.Popen(args, start_new_session=True)
    url = f"redis://{LOOPBACK}:{port}/0"
    client = redis.Redis.from_url(url)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield url
    finally:
        client.close()
        stop(process, timeout=20)


# --- memory of a process tree ------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            parent = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):  # gone meanwhile
            continue
        if parent == pid:
            found.append(int(entry.name))
    return found


def process_tree(pid: int) -> list[int]:
    tree, queue = [], [pid]
    while queue:
        current = queue.pop()
        tree.append(current)
        queue.extend(_children(current))
    return tree


def _status_kib(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_memory(pid: int) -> tuple[int, int]:
    """(sum of VmRSS, sum of VmHWM) in bytes over `pid` and all its descendants."""
    pids = process_tree(pid)
    rss = sum(_status_kib(p, "VmRSS") for p in pids) * 1024
    hwm = sum(_status_kib(p, "VmHWM") for p in pids) * 1024
    return rss, hwm


def machine() -> str:
    cores = os.cpu_count() or 0
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = _status_meminfo()
    python = sys.version.split()[0]
    return (
        f"{cores} cores ({model or 'unknown CPU'}), {memory / 2**30:.0f} GiB RAM, Python {python}"
    )


def _status_meminfo() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0

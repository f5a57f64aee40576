"""`python -m bench [--quick] [--only ingest,drain,...]`: measure and print, never assert."""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from bench import ingest, sustained
from bench.common import Figure, machine, read_figures, run_section_process, say

SECTIONS = ("ingest", "drain", "dashboard", "bytes", "sustained", "rss")
# Dashboard datasets: EVENTS:PERIOD, a site with that many demo events over the period's days.
FULL = {
    "drain_events": 1_000_000,
    "dashboard_datasets": "10000000:30d,10000000:12mo",
    "rounds": 20,
}
QUICK = {"drain_events": 50_000, "dashboard_datasets": "200000:30d,200000:12mo", "rounds": 5}


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min), {_core_speed()}"


def _core_speed() -> str:
    """What one core does now: a fixed pure-Python loop, timed. The same code measured on hosts
    of the same kind (or on one host at different times) differed by up to 3x; figures of two
    runs compare only after scaling by this."""
    loops = 2_000_000
    started = time.perf_counter()
    total = 0
    for number in range(loops):
        total += number & 7
    return f"core speed {loops / (time.perf_counter() - started) / 1e6:.1f} M loops/s"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, shorter runs")
    parser.add_argument(
        "--only", default=",".join(SECTIONS), help=f"comma-separated sections: {','.join(SECTIONS)}"
    )
    args = parser.parse_args()
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    sizes = QUICK if args.quick else FULL
    say(f"Ursa benchmarks ({'quick' if args.quick else 'full'} run) on {machine()}")
    say(f"started with {_load()}; figures below are from this run only")
    figures: list[Figure] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ursa-bench-") as folder:
        workdir = Path(folder)
        if "ingest" in chosen:
            say(f"\n[{_core_speed()}]")
            figures += ingest.run(args.quick, workdir)
        if "drain" in chosen:
            say(f"\n[{_core_speed()}]")
            figures += read_figures(
                run_section_process(
                    "bench.drain", ["--events", str(sizes["drain_events"])], timeout=3600
                )
            )
        if "dashboard" in chosen or "bytes" in chosen:
            say(f"\n[{_core_speed()}]")
            extra = [] if "dashboard" in chosen else ["--no-cards"]
            extra += [] if "bytes" in chosen else ["--no-bytes"]
            figures += read_figures(
                run_section_process(
                    "bench.dashboard",
                    [
                        "--datasets",
                        str(sizes["dashboard_datasets"]),
                        "--rounds",
                        str(sizes["rounds"]),
                        *extra,
                    ],
                    timeout=7200,
                )
            )
        if "sustained" in chosen or "rss" in chosen:
            say(f"\n[{_core_speed()}]")
            figures += sustained.run(args.quick, workdir, memory_only="sustained" not in chosen)
    say(f"\nSummary ({time.monotonic() - started:,.0f} s; finished with {_load()})")
    for figure in figures:
        say(figure.line())
    missed = [f"{figure.section}: {figure.name}" for figure in figures if figure.met is False]
    say(f"\ntargets missed: {', '.join(missed)}" if missed else "\nall targets met")


if __name__ == "__main__":
    main()

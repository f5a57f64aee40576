"""Ursa's benchmarks: `python -m bench` (or `uv run nox -s bench`) prints measured figures.

Sections: (a) ingest, (b) drain, (c) dashboard, (d) bytes on disk, (e) sustained, (f) RSS; see
`docs/benchmarks.md`. Everything runs on this machine and talks only to 127.0.0.1.
"""

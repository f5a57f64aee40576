"""Infrastructure checks run in their own environment (`nox -s infra`): no app imports here."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

"""docs/configuration.md's table, `.env.example` and the settings class name the same variables."""

from __future__ import annotations

import re
from pathlib import Path

from app.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_readme_table_matches_settings():
    readme = (ROOT / "docs" / "configuration.md").read_text()
    documented = re.findall(r"^\| `([A-Z_]+)` \|", readme, flags=re.MULTILINE)
    assert documented == list(Settings.model_fields)


def test_env_example_matches_settings():
    lines = (ROOT / ".env.example").read_text().splitlines()
    names = [line.split("=", 1)[0] for line in lines if line and not line.startswith("#")]
    assert names == list(Settings.model_fields)


def test_every_setting_is_described():
    assert all(field.description for field in Settings.model_fields.values())

#!/usr/bin/env bash
# Sourced by start.sh and test.sh: makes sure uv is available (installing it from PyPI when
# missing) and syncs the project environment from the committed uv.lock.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export UV_PYTHON_DOWNLOADS=never
export PATH="$HOME/.local/bin:$PWD/.tools/bin:$PATH"
if ! command -v uv >/dev/null 2>&1; then
  echo "installing uv..." >&2
  python3 -m pip install --quiet --user uv 2>/dev/null \
    || python3 -m pip install --quiet --user --break-system-packages uv 2>/dev/null \
    || { python3 -m venv .tools && .tools/bin/pip install --quiet uv; }
fi
uv sync --frozen --quiet

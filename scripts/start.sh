#!/usr/bin/env bash
# Starts Ursa on the embedded defaults at http://127.0.0.1:8000 (data in ./data).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh
exec uv run ursa serve

#!/usr/bin/env bash
# Runs the whole test suite, installing what it needs on a fresh Debian machine first:
# uv + the locked environment, Chromium and Node/npm (apt), the npm test client, and a
# Postgres (the one on 127.0.0.1:5432 when it answers, else a throwaway cluster).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh

apt_install() {
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  else
    sudo apt-get update -qq >/dev/null && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  fi
}

command -v chromium >/dev/null 2>&1 || apt_install chromium
command -v npm >/dev/null 2>&1 || apt_install nodejs npm
(cd tests/e2e/npm && npm ci --silent --no-audit --no-fund)

if python3 - <<'PY'
import socket, sys
try:
    socket.create_connection(("127.0.0.1", 5432), timeout=2).close()
except OSError:
    sys.exit(1)
PY
then
  export URSA_TEST_POSTGRES_URL="${URSA_TEST_POSTGRES_URL:-postgresql+asyncpg://postgres@127.0.0.1:5432/postgres}"
else
  source scripts/throwaway-postgres.sh
fi

uv run nox "$@"

#!/usr/bin/env bash
# Installs everything the test suite needs into .venv (and the system packages the
# integration tests use), then runs the whole suite. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'

if [ -x scripts/install-system-deps.sh ]; then
    scripts/install-system-deps.sh
fi
# twilio-cli and twilio-node for the front-door tests, into tests/clients/ (skipped when current)
bash scripts/install-node-clients.sh

set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
    echo "test.sh: pytest collected no tests; failing" >&2
    exit 1
fi
exit "$rc"

#!/usr/bin/env bash
# Installs the Node clients the front-door tests run unmodified through the gateway's proxy:
# twilio-cli and twilio (twilio-node), at the versions pinned in tests/clients/package.json and
# tests/clients/package-lock.json, into tests/clients/node_modules (a folder the tests own).
# Needs node and npm (scripts/install-system-deps.sh installs Debian's when missing).
# Cache-friendly: does nothing when the pinned versions are installed already.
set -euo pipefail
cd "$(dirname "$0")/../tests/clients"

log() { echo "install-node-clients: $*" >&2; }

if ! command -v npm >/dev/null 2>&1; then
    log "npm not found: run scripts/install-system-deps.sh (as root) first"
    exit 1
fi

installed_version() { # package -> the version in node_modules, or nothing
    node -e 'try { process.stdout.write(require(process.argv[1] + "/package.json").version) } catch (e) {}' \
        "./node_modules/$1" 2>/dev/null || true
}
pinned_version() {
    node -e 'process.stdout.write(require("./package.json").dependencies[process.argv[1]])' "$1"
}

current=1
for package in twilio twilio-cli; do
    if [ "$(installed_version "$package")" != "$(pinned_version "$package")" ]; then
        current=0
    fi
done
if [ "$current" -eq 1 ] && [ -x node_modules/.bin/twilio ]; then
    log "twilio $(installed_version twilio) and twilio-cli $(installed_version twilio-cli) already installed"
    exit 0
fi

log "npm ci (twilio $(pinned_version twilio), twilio-cli $(pinned_version twilio-cli))"
# --ignore-scripts: twilio-cli's postinstall only prints a welcome banner.
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
log "installed twilio $(installed_version twilio), twilio-cli $(installed_version twilio-cli)"

#!/usr/bin/env bash
# Installs the system packages the test suite needs and that pip cannot provide:
#   - prometheus (Debian package), used by tests/test_grafana.py to evaluate every PromQL
#     expression of the Grafana dashboard against a live gateway.
#   - nodejs and npm (Debian packages), which run twilio-cli and twilio-node in the front-door
#     tests (scripts/install-node-clients.sh then installs those from npm).
# Idempotent: installs only what is missing from PATH, and nothing when all of it is there.
# The tests start their own Prometheus (own config, own storage dir, free loopback port), so
# the Debian service is never left running: a policy-rc.d forbids starting it during the
# install, and it is stopped and disabled afterwards should it be running anyway.
set -euo pipefail

log() { echo "install-system-deps: $*" >&2; }

missing=()
if command -v prometheus >/dev/null 2>&1; then
    log "prometheus already installed: $(prometheus --version 2>&1 | head -n 1)"
else
    missing+=(prometheus)
fi
if command -v node >/dev/null 2>&1; then
    log "node already installed: $(node --version)"
else
    missing+=(nodejs)
fi
# NodeSource's nodejs package carries npm itself; Debian's comes apart from it.
if ! command -v npm >/dev/null 2>&1; then
    missing+=(npm)
fi
if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    log "missing ${missing[*]} and no apt-get: install them by hand (Prometheus >= 2.x, Node >= 18)"
    exit 1
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO=(sudo -n)
    else
        log "must run as root (or with password-less sudo) to install ${missing[*]}"
        exit 1
    fi
fi

POLICY=/usr/sbin/policy-rc.d
created_policy=0
cleanup() {
    if [ "$created_policy" -eq 1 ]; then
        "${SUDO[@]}" rm -f "$POLICY"
    fi
}
trap cleanup EXIT

if [ ! -e "$POLICY" ]; then
    # Exit status 101 = "action forbidden": invoke-rc.d and deb-systemd-invoke will not start
    # the service during the install. Removed again on exit (only if we created it).
    printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$POLICY" >/dev/null
    "${SUDO[@]}" chmod 0755 "$POLICY"
    created_policy=1
fi

export DEBIAN_FRONTEND=noninteractive
APT_OPTS=(-q -o DPkg::Lock::Timeout=300)
log "apt-get update"
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${APT_OPTS[@]}" update
log "apt-get install ${missing[*]}"
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${APT_OPTS[@]}" install -y \
    --no-install-recommends "${missing[@]}"

# Never leave the packaged service running or enabled.
if command -v systemctl >/dev/null 2>&1; then
    # "disable" works without a running systemd too (it only removes the wants/ symlink).
    "${SUDO[@]}" systemctl disable prometheus.service >/dev/null 2>&1 || true
    if [ -d /run/systemd/system ]; then
        "${SUDO[@]}" systemctl stop prometheus.service >/dev/null 2>&1 || true
    fi
fi
if [ -x /etc/init.d/prometheus ] && [ ! -d /run/systemd/system ]; then
    if "${SUDO[@]}" /etc/init.d/prometheus status >/dev/null 2>&1; then
        "${SUDO[@]}" /etc/init.d/prometheus stop >/dev/null 2>&1 || true
    fi
    if command -v update-rc.d >/dev/null 2>&1; then
        "${SUDO[@]}" update-rc.d prometheus disable >/dev/null 2>&1 || true
    fi
fi

for tool in prometheus node npm; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        log "packages installed but no $tool on PATH"
        exit 1
    fi
done
log "installed: $(prometheus --version 2>&1 | head -n 1); node $(node --version); npm $(npm --version)"

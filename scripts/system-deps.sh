#!/usr/bin/env bash
# Installs the Debian packages the tests and benchmarks need, when they are missing.
# Needs root (as on the development and CI machines); elsewhere it names what to install.
set -euo pipefail

packages=(mosquitto mosquitto-clients libmbedtls-dev mosquitto-dev libmosquitto-dev curl jq libopus0 libopus-dev ffmpeg espeak-ng)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "system-deps: please install: ${missing[*]}" >&2
  exit 1
fi
echo "system-deps: installing ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The package's own service is not wanted here: tests and benchmarks start their own brokers.

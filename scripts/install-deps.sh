#!/usr/bin/env bash
# Installs what liveproc needs to build, run and test, and only what is
# missing: GStreamer 1.22 development files and plugins, ffmpeg, curl (the
# docs' HTTP examples are run by the tests), openssl (the client tests
# make their CA and certificates with it), Chromium and its WebDriver
# (the dashboard's browser tests), PostgreSQL (the registry's second
# backend; the tests start private servers of their own), systemd (its
# systemd-analyze checks the example unit in docs/), Prometheus (its
# promtool checks the /metrics scrape), and the
# toolchains of the client tests and the dashboard build (Go, Node.js +
# npm, Python venv) where no
# other one is on the PATH. Debian 12 (bookworm) or later. Uses sudo when
# not root. No protoc: the server's build compiles the protos in Rust
# (protox) and the clients use the one bundled in the pinned grpcio-tools.
set -euo pipefail

packages=(
  pkg-config
  libgstreamer1.0-dev
  libgstreamer-plugins-base1.0-dev
  gstreamer1.0-plugins-base
  gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly
  gstreamer1.0-libav
  gstreamer1.0-tools
  ffmpeg
  fonts-dejavu-core
  curl
  openssl
  chromium
  chromium-driver
  postgresql
  systemd
  prometheus
)

# Client test toolchains: a newer one already on the PATH (rustup-style
# installs, nodesource, python.org builds) is kept.
command -v go >/dev/null 2>&1 || packages+=(golang-go)
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || packages+=(python3-venv)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo not found. Install Rust (https://rustup.rs), then run make again." >&2
  exit 1
fi

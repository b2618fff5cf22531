#!/usr/bin/env bash
# Installs Chromium (when missing), which the report tests open the HTML
# report in, headless. Idempotent: does nothing when chromium is there.
set -euo pipefail

if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends chromium
command -v chromium >/dev/null 2>&1 || { echo "chromium.sh: chromium is still not on PATH" >&2; exit 1; }

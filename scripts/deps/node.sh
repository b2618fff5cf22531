#!/usr/bin/env bash
# Installs Node.js (when missing) and the npm packages the tests run:
# rhea for the Event Hubs emulator and azurite for blob storage.
# Idempotent: a second run with an unchanged package-lock.json does nothing.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
emu="$here/test/eventhubs-emulator"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends nodejs npm
fi

major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 18 ]; then
  echo "node.sh: Node.js $(node --version) is too old; 18 or later is needed" >&2
  exit 1
fi

stamp="$emu/node_modules/.sspr-lock.sha256"
want=$(sha256sum "$emu/package-lock.json" | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
  && [ -x "$emu/node_modules/.bin/azurite-blob" ] && [ -d "$emu/node_modules/rhea" ]; then
  exit 0
fi

cache="${SSPR_TEST_CACHE:-$HOME/.cache/sspr-exporter-test}/npm"
mkdir -p "$cache"
(cd "$emu" && npm ci --no-audit --no-fund --cache "$cache")
echo "$want" >"$stamp"

#!/usr/bin/env bash
# Builds the static, reproducible sspr-exporter binary. The Dockerfile runs
# exactly this script, and the test script runs it too, so the image build
# is checked on machines without a container engine.
#   scripts/build.sh [OUTPUT]   (default: bin/sspr-exporter)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out="${1:-bin/sspr-exporter}"
version="${SSPR_VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo devel)}"
CGO_ENABLED=0 go build -trimpath -buildvcs=false \
  -ldflags "-s -w -X main.version=${version}" \
  -o "$out" ./cmd/sspr-exporter
echo "built $out ($version)"

#!/usr/bin/env bash
# Runs every test of sspr-exporter, installing what the tests need first:
# the real servers (Apache Kafka, Azurite, the Event Hubs emulator's
# packages, kcat, Elasticsearch 8.19 and 9.5 and OpenSearch 2.19 nodes)
# through scripts/deps/*.sh, then the checks:
# gofmt, go vet, staticcheck, the unit and integration tests with -race,
# a short fuzzing run of every decoder, the release build, and the
# README's sample run.
#
# Integration tests never skip here: SSPR_REQUIRE_SERVERS=1 turns a server
# that cannot start into a failure that says why.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n== %s\n' "$*"; }

step "toolchain"
if ! command -v go >/dev/null 2>&1; then
  echo "Go 1.26 or later is needed (https://go.dev/dl/); it is not on PATH" >&2
  exit 1
fi
go version
if ! command -v gcc >/dev/null 2>&1; then
  # The race detector needs cgo.
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends gcc libc6-dev
  else
    echo "gcc is needed for 'go test -race': install it (apt-get install gcc)" >&2
    exit 1
  fi
fi

step "test dependencies"
for dep in scripts/deps/*.sh; do
  echo "-- $dep"
  bash "$dep"
done

step "format, vet, staticcheck"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './test/*/node_modules/*'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change: $unformatted" >&2
  exit 1
fi
go vet ./...
# staticcheck is pinned in go.mod's tool block: nothing to install by hand.
go tool staticcheck ./...

step "tests (-race)"
export SSPR_REQUIRE_SERVERS=1
go test -race -count=1 -timeout 45m ./...

step "fuzzing (short)"
fuzztime="${SSPR_FUZZTIME:-10s}"
for pkg in ./internal/entra ./internal/sspr ./internal/ecs ./internal/pipeline; do
  for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
    echo "-- $pkg $target"
    go test -run='^$' -fuzz="^${target}\$" -fuzztime="$fuzztime" -fuzzminimizetime=50x "$pkg"
  done
done

step "release build and sample run"
bin="$(mktemp -d)/sspr-exporter"
scripts/build.sh "$bin"
if ldd "$bin" >/dev/null 2>&1; then
  echo "the release binary is not static" >&2
  exit 1
fi
"$bin" version
"$bin" run --config config.example.toml >"$bin.out"
docs=$(wc -l <"$bin.out")
echo "sample run wrote $docs documents"
[ "$docs" -gt 0 ]
echo "all tests passed"

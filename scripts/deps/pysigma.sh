#!/usr/bin/env bash
# Installs pySigma and its Elasticsearch backend into a virtual environment
# of the test cache, for the test that converts rules/sigma and runs the
# queries against a real Elasticsearch node. Idempotent: a second run with
# the same pins does nothing.
set -euo pipefail

# pySigma-backend-elasticsearch 2.1.1 requires pySigma >=1.4,<2: pySigma
# 2.0.1 cannot be installed beside it, so the 1.x line's last release is pinned.
pins="pysigma==1.5.1 pysigma-backend-elasticsearch==2.1.1"
venv="${SSPR_TEST_CACHE:-$HOME/.cache/sspr-exporter-test}/pysigma"
stamp="$venv/.sspr-pins"

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$pins" ] && [ -x "$venv/bin/python" ] \
  && "$venv/bin/python" -c 'import sigma.backends.elasticsearch' >/dev/null 2>&1; then
  exit 0
fi

py=""
for c in python3.11 python3.12 python3.13 python3; do
  if command -v "$c" >/dev/null 2>&1; then py=$c; break; fi
done
if [ -z "$py" ] || ! "$py" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends python3 python3-venv
  py=${py:-python3}
fi

rm -rf "$venv"
mkdir -p "$(dirname "$venv")"
"$py" -m venv "$venv"
# shellcheck disable=SC2086
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check $pins
"$venv/bin/python" -c 'import sigma.backends.elasticsearch'
echo "$pins" >"$stamp"

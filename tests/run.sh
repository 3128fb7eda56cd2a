#!/usr/bin/env bash
# Run the whole test suite. Installs what the tests need when it is missing:
# nats-server (deploy/nats/install.sh), the Python packages the tests call
# (tests/python-requirements.txt: Radicale among them), the npm packages of the
# OpenID Connect relying party (tests/e2e/node) and json-server
# (tests/json-server), each from its package-lock.json, PostgreSQL's
# binaries (Debian package; the tests start their own throwaway clusters), and
# Chromium with its driver (Debian packages) for the portal's browser tests.
# Extra arguments go to cargo test (which then runs the binaries one at a time).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash deploy/nats/install.sh

python3 -m pip install --quiet --disable-pip-version-check -r tests/python-requirements.txt

npm ci --prefix tests/e2e/node --no-audit --no-fund --loglevel=error
# json-server 0.17 (pinned by its package-lock.json): the REST API the mapping-file connector is tested against.
npm ci --prefix tests/json-server --no-audit --no-fund --loglevel=error

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && [ -z "${MNO_PG_BIN:-}" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing PostgreSQL (Debian package) for the PostgreSQL tests"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  else
    echo "error: PostgreSQL binaries not found; install the postgresql package or set MNO_PG_BIN to its bin dir" >&2
    exit 1
  fi
fi

# The portal's browser tests drive Debian's Chromium through its chromedriver.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing chromium and chromium-driver (Debian packages) for the portal's browser tests"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  else
    echo "error: chromium and chromedriver not found; install the chromium and chromium-driver packages" >&2
    exit 1
  fi
fi

export RUST_BACKTRACE=1
if [ "$#" -gt 0 ]; then
  # Arguments given (a filter, `-p crate`): cargo runs what they select. Every
  # test binary runs even after one fails, so that a run reports every failure.
  exec cargo test --workspace --no-fail-fast "$@"
fi
# The whole suite: built once, then two test binaries at a time (their tests
# mostly wait on servers); every binary runs even after one fails.
exec python3 tests/run_binaries.py

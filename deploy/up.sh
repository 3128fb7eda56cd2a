#!/usr/bin/env bash
# Run the whole platform in one process: installs nats-server if missing,
# builds `mno` (release profile, with cargo's progress shown; the first build
# takes a few minutes, later ones seconds) and runs `target/release/mno up`
# (HTTP on MNO_HTTP_ADDR, default 127.0.0.1:8080; state under MNO_DATA_DIR,
# default ./data). Arguments go to `mno up`: `bash deploy/up.sh --demo` seeds a
# demo organisation. Ctrl-C stops it cleanly.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash deploy/nats/install.sh >/dev/null
echo "building mno (release profile; the first build takes a few minutes)" >&2
cargo build --release -p mno-gateway --bin mno
exec target/release/mno up "$@"

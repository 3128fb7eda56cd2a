#!/usr/bin/env bash
# Run the whole platform in one process: installs nats-server if missing,
# builds `mno` and runs `mno up` (HTTP on MNO_HTTP_ADDR, default 127.0.0.1:8080;
# state under MNO_DATA_DIR, default ./data). Ctrl-C stops it cleanly.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash deploy/nats/install.sh >/dev/null
exec cargo run --release --quiet -p mno-gateway --bin mno -- up "$@"

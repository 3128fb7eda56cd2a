#!/usr/bin/env bash
# Stop what deploy/cluster/start.sh started: the mno processes first (SIGTERM:
# they finish what they hold and give their leases up), then the nats-server
# nodes and PostgreSQL. State stays under ./data/cluster (or $MNO_CLUSTER_DIR);
# delete that directory to start afresh.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
dir=${MNO_CLUSTER_DIR:-$(pwd)/data/cluster}
stop_pid() { # pid file
  [ -f "$1" ] || return 0
  local pid; pid=$(cat "$1")
  if kill "$pid" 2>/dev/null; then
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$1"
}
for p in edge-1 edge-2 worker-1 worker-2; do stop_pid "$dir/$p.pid"; done
for n in 1 2 3; do stop_pid "$dir/nats-n$n.pid"; done
if [ -d "$dir/pg" ]; then
  pgbin=${MNO_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
  as_pg=(); [ "$(id -u)" = 0 ] && as_pg=(runuser -u postgres --)
  "${as_pg[@]}" "$pgbin/pg_ctl" -D "$dir/pg" -m fast stop >/dev/null 2>&1 || true
fi
echo "mno cluster stopped (state kept in $dir)"

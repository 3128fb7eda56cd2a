#!/usr/bin/env bash
# A local scaled-out platform on loopback: a three-node JetStream cluster
# (streams with 3 replicas), a throwaway PostgreSQL, two edge processes and two
# worker processes (`mno serve`). State and logs under ./data/cluster (or
# $MNO_CLUSTER_DIR). Stop everything with `bash deploy/cluster/stop.sh`.
# MNO_BIN=path uses that mno binary instead of building the release one.
#
# Edges: http://127.0.0.1:8081 and http://127.0.0.1:8082 (put any HTTP load
# balancer in front). PostgreSQL runs as the `postgres` user when started as
# root (it refuses root), on 127.0.0.1:55432 with trust authentication.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
root=$(pwd)
dir=${MNO_CLUSTER_DIR:-$root/data/cluster}
mkdir -p "$dir"
bash deploy/nats/install.sh >/dev/null
nats=$root/.tools/nats/bin/nats-server
if [ -n "${MNO_BIN:-}" ]; then
  mno=$MNO_BIN # a binary built already (e.g. target/debug/mno)
else
  echo "building mno (release profile; the first build takes a few minutes)" >&2
  cargo build --release -p mno-gateway --bin mno
  mno=$root/target/release/mno
fi

# The ports are those of deploy/nats/cluster/*.conf and of this script: a
# server already on one of them (another platform's) must not be joined.
for port in 4222 4223 4224 6222 6223 6224 8222 8223 8224 55432 8081 8082 9471 9472 9473 9474; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port is in use on 127.0.0.1 (another nats-server, PostgreSQL or mno?); stop what holds it first" >&2
    exit 1
  fi
done

# 1. The JetStream cluster: deploy/nats/cluster/n{1,2,3}.conf, stores under $dir.
for n in 1 2 3; do
  mkdir -p "$dir/nats/n$n"
  sed "s#\./data/nats-cluster/n$n#$dir/nats/n$n#" "deploy/nats/cluster/n$n.conf" >"$dir/nats/n$n.conf"
  "$nats" -c "$dir/nats/n$n.conf" >"$dir/nats/n$n.log" 2>&1 &
  echo $! >"$dir/nats-n$n.pid"
done
urls=nats://127.0.0.1:4222,nats://127.0.0.1:4223,nats://127.0.0.1:4224
cluster_up=
for _ in $(seq 1 100); do
  if curl -fs http://127.0.0.1:8222/healthz?js-enabled-only=true >/dev/null 2>&1 &&
    curl -fs http://127.0.0.1:8223/healthz?js-enabled-only=true >/dev/null 2>&1 &&
    curl -fs http://127.0.0.1:8224/healthz?js-enabled-only=true >/dev/null 2>&1; then
    cluster_up=1
    break
  fi
  sleep 0.2
done
[ -n "$cluster_up" ] || { echo "the nats cluster did not come up within 20 s: see $dir/nats/n*.log" >&2; exit 1; }

# 2. PostgreSQL: a throwaway cluster.
pgbin=${MNO_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
[ -x "$pgbin/initdb" ] || { echo "no PostgreSQL found: apt-get install postgresql, or set MNO_PG_BIN" >&2; exit 1; }
as_pg=()
if [ "$(id -u)" = 0 ]; then as_pg=(runuser -u postgres --); chown postgres "$dir"; fi
if [ ! -d "$dir/pg" ]; then
  "${as_pg[@]}" "$pgbin/initdb" -D "$dir/pg" -A trust -U postgres -E UTF8 >"$dir/pg-init.log"
fi
"${as_pg[@]}" "$pgbin/pg_ctl" -D "$dir/pg" -l "$dir/pg.log" -w \
  -o "-p 55432 -c listen_addresses=127.0.0.1 -k $dir -c max_connections=200" start >/dev/null
"${as_pg[@]}" "$pgbin/createdb" -h 127.0.0.1 -p 55432 -U postgres mno 2>/dev/null || true
database=postgres://postgres@127.0.0.1:55432/mno

# 3. The platform: two workers (projections, delivery, the Hub's jobs), two edges.
serve() { # name roles http-port metrics-port
  MNO_NATS_URL=$urls MNO_DATABASE_URL=$database MNO_STREAM_REPLICAS=3 MNO_INSTANCE=$1 \
    MNO_DATA_DIR=$dir/$1 MNO_HTTP_ADDR=127.0.0.1:$3 MNO_METRICS_ADDR=127.0.0.1:$4 \
    "$mno" serve --role "$2" >"$dir/$1.log" 2>&1 &
  echo $! >"$dir/$1.pid"
}
ready() { for _ in $(seq 1 150); do curl -fs "http://127.0.0.1:$1/readyz" >/dev/null 2>&1 && return 0; sleep 0.2; done; return 1; }
serve worker-1 workers 0 9471
# The first process creates the streams, buckets and tables; the others then find them.
ready 9471 || { echo "worker-1 did not start: see $dir/worker-1.log" >&2; exit 1; }
serve worker-2 workers 0 9472
# The connectors runtime runs beside one edge, in one process of the platform.
serve edge-1 edge,connectors 8081 9473
serve edge-2 edge 8082 9474
for port in 9472 9473 9474; do
  ready "$port" || { echo "a process on metrics port $port did not start: see the logs in $dir" >&2; exit 1; }
done
echo "mno cluster is up: edges http://127.0.0.1:8081 (with the connectors) and http://127.0.0.1:8082 (bus $urls, database $database)"
echo "logs and state: $dir; stop: bash deploy/cluster/stop.sh"

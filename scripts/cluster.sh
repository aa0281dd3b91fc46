#!/usr/bin/env bash
# `make cluster`: PostgreSQL, SeaweedFS (S3) and three liveproc nodes on
# loopback sharing them, with the demo stream (placed on one of the nodes
# by the cluster). Ctrl-C stops everything; the state stays in
# $CLUSTER_DIR (default ./data/cluster) for the next start.
#
#   node-1  gRPC/HTTP 127.0.0.1:50051  SRT 127.0.0.1:9000
#   node-2  gRPC/HTTP 127.0.0.1:50052  SRT 127.0.0.1:9001
#   node-3  gRPC/HTTP 127.0.0.1:50053  SRT 127.0.0.1:9002
#   PostgreSQL 127.0.0.1:$PG_PORT, S3 127.0.0.1:$S3_PORT
set -euo pipefail
cd "$(dirname "$0")/.."

DIR=${CLUSTER_DIR:-./data/cluster}
PG_PORT=${PG_PORT:-55432}
S3_PORT=${S3_PORT:-58333}
BIN=./target/release/liveproc
WEED=./target/py/bin/weed
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)

pids=()
PGDIR=
stop_all() {
  trap - EXIT INT TERM
  echo "stopping the cluster"
  # Nodes first (they drain), then the store and the database (runuser
  # does not pass a signal on to PostgreSQL: pg_ctl stops it).
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[i]}" 2>/dev/null || true
    [ "$i" = 0 ] || wait "${pids[i]}" 2>/dev/null || true
  done
  if [ -n "$PGDIR" ] && [ -f "$PGDIR/data/postmaster.pid" ]; then
    as_pg "$PGBIN/pg_ctl" stop -D "$PGDIR/data" -m fast >/dev/null 2>&1 || true
  fi
  wait 2>/dev/null || true
}
trap stop_all EXIT INT TERM

secret() { # a random hex secret kept in $DIR/$1
  [ -s "$DIR/$1" ] || (umask 077 && od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$DIR/$1")
  cat "$DIR/$1"
}
PG_PASSWORD=$(secret postgres.password)
S3_SECRET=$(secret s3.secret)
ADMIN_KEY=ak_$(secret admin.key)

wait_for() { # what, seconds, command...
  local what=$1 secs=$2
  shift 2
  for ((i = 0; i < secs * 5; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "$what did not start; see $DIR/*.log" >&2
  exit 1
}

# --- PostgreSQL (Debian's postgresql; as the postgres user when root) ---
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
if [ "$(id -u)" = 0 ]; then
  # The postgres user may not reach the project's folder.
  PGDIR=/tmp/liveproc-cluster-postgres
  as_pg() { runuser -u postgres -- "$@"; }
else
  PGDIR=$DIR/postgres
  as_pg() { "$@"; }
fi
if [ ! -f "$PGDIR/data/PG_VERSION" ]; then
  mkdir -p "$PGDIR"
  printf '%s' "$PG_PASSWORD" >"$PGDIR/password"
  [ "$(id -u)" = 0 ] && chown -R postgres "$PGDIR"
  as_pg "$PGBIN/initdb" -D "$PGDIR/data" -U postgres --auth=scram-sha-256 -E UTF8 \
    --pwfile="$PGDIR/password" >"$DIR/initdb.log"
fi
as_pg "$PGBIN/postgres" -D "$PGDIR/data" -p "$PG_PORT" -c listen_addresses=127.0.0.1 \
  -c unix_socket_directories="$PGDIR" >"$DIR/postgres.log" 2>&1 &
pids+=($!)
wait_for PostgreSQL 30 "$PGBIN/pg_isready" -h 127.0.0.1 -p "$PG_PORT"
export PGPASSWORD=$PG_PASSWORD
if ! "$PGBIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -tAc \
  "SELECT 1 FROM pg_database WHERE datname = 'liveproc'" | grep -q 1; then
  "$PGBIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres liveproc
fi
unset PGPASSWORD

# --- SeaweedFS (weed mini: one process with an S3 endpoint) ---
cat >"$DIR/s3.json" <<EOF
{"identities": [{"name": "liveproc",
  "credentials": [{"accessKey": "liveproc", "secretKey": "$S3_SECRET"}],
  "actions": ["Read", "Write", "List", "Tagging"]}]}
EOF
mkdir -p "$DIR/s3"
"$WEED" mini -dir="$DIR/s3" -ip=127.0.0.1 -ip.bind=127.0.0.1 -s3.port="$S3_PORT" \
  -s3.config="$DIR/s3.json" -bucket=liveproc -master.telemetry=false -webdav=false \
  -admin.ui=false -master.volumeSizeLimitMB=64 >"$DIR/s3.log" 2>&1 &
pids+=($!)
wait_for SeaweedFS 60 grep -q "S3 Endpoint:" "$DIR/s3.log"

# --- three nodes ---
export LIVEPROC_DATABASE_URL="postgres://postgres:$PG_PASSWORD@127.0.0.1:$PG_PORT/liveproc"
export LIVEPROC_OBJECT_STORE=s3://liveproc/cluster
export AWS_ENDPOINT_URL=http://127.0.0.1:$S3_PORT AWS_ALLOW_HTTP=true AWS_REGION=us-east-1
export AWS_ACCESS_KEY_ID=liveproc AWS_SECRET_ACCESS_KEY=$S3_SECRET
export LIVEPROC_ADMIN_KEY=$ADMIN_KEY
for n in 1 2 3; do
  demo=()
  # One node makes the demo organization and stream; the cluster places
  # its pull.
  [ "$n" = 1 ] && demo=(--demo)
  "$BIN" serve "${demo[@]}" --node-id "node-$n" --data-dir "$DIR/node-$n" \
    --listen "127.0.0.1:$((50050 + n))" --srt-listen "127.0.0.1:$((8999 + n))" \
    >"$DIR/node-$n.log" 2>&1 &
  pids+=($!)
  wait_for "node-$n" 60 grep -q "liveproc ready" "$DIR/node-$n.log"
done

cat <<EOF

liveproc cluster: three nodes on one PostgreSQL and one S3 store.
  dashboard      http://127.0.0.1:50051/  (any node: 50052, 50053)
  demo API key   $(cat "$DIR/node-1/demo.key")
  admin key      $ADMIN_KEY
  the nodes      grpcurl -plaintext -H "authorization: Bearer $ADMIN_KEY" \\
                   127.0.0.1:50052 liveproc.v1.Cluster/ListNodes
  logs           $DIR/node-{1,2,3}.log, postgres.log, s3.log
Kill a node (kill -9 of its pid: $(printf '%s ' "${pids[@]:2}")) and the demo stream moves.
Ctrl-C stops the cluster.
EOF
# Until Ctrl-C (a node killed meanwhile is left dead: the others go on).
wait || true

#!/usr/bin/env bash
# The load test of scripts/load.py on the embedded store and on a PostgreSQL node, alternated
# in one run so the ratios hold on a noisy machine (BENCHMARKS.md): the token hot path must
# not care which store is behind it; durable grants pay the database's round trips.
#
#   scripts/load-store.sh [seconds per run, default 10] [connections, default 64] [rounds, default 2]
#
# Starts a private throwaway PostgreSQL cluster from Debian's binaries (as root), a fresh
# database for every run, and removes it all at the end. Traffic stays on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-10}"
CONNS="${2:-64}"
ROUNDS="${3:-2}"

command -v pg_ctlcluster >/dev/null || { apt-get update -qq && apt-get install -y -qq postgresql; } >/dev/null
PGBIN=/usr/lib/postgresql/$(ls /usr/lib/postgresql | sort -V | tail -1)/bin
PG=$(mktemp -d /tmp/tessera-load-pg.XXXXXX)
chown postgres:postgres "$PG"
PGPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
runuser -u postgres -- "$PGBIN/initdb" -D "$PG/data" -U postgres --auth=trust -E UTF8 >/dev/null
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PG/data" -l "$PG/log" -w \
  -o "-c listen_addresses=127.0.0.1 -p $PGPORT -k $PG" start >/dev/null
trap 'runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PG/data" -m fast -w stop >/dev/null; rm -rf "$PG"' EXIT

cargo build --release --quiet
OUT=$(mktemp -d)
for round in $(seq 1 "$ROUNDS"); do
  env -u TESSERA_STORE scripts/load.py --bin target/release/tessera --seconds "$DURATION" \
    --conns "$CONNS" --json "$OUT/redb-$round.json" >/dev/null
  db="load_$round"
  runuser -u postgres -- "$PGBIN/psql" -h 127.0.0.1 -p "$PGPORT" -qc "CREATE DATABASE $db" >/dev/null
  TESSERA_STORE="postgres://postgres@127.0.0.1:$PGPORT/$db" scripts/load.py \
    --bin target/release/tessera --seconds "$DURATION" --conns "$CONNS" --json "$OUT/pg-$round.json" >/dev/null
done
scripts/load-table.py "$OUT" "$ROUNDS" redb pg
rm -rf "$OUT"

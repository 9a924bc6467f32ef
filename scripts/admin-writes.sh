#!/usr/bin/env bash
# Admin write rate: POST /api/v1/apps on the release server (embedded store, every create
# durable before it is answered) from one connection, then from many at once, whose creates
# the registry commits together (BENCHMARKS.md). The ratio of the two is what group commit buys
# on this disk; alternate two builds to compare them:
#
#   for b in old new old new; do scripts/admin-writes.sh ./tessera-$b; done
#
#   scripts/admin-writes.sh [BINARY, default target/release/tessera] [seconds, default 5] [connections, default 32]
#
# The data directory is on the disk under target/, not in /tmp, which may be memory.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${1:-target/release/tessera}"
SECS="${2:-5}"
CONNS="${3:-32}"
command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk) >/dev/null
[[ -x "$BIN" ]] || cargo build --release --quiet

mkdir -p target
DATA=$(mktemp -d -p target admin-writes.XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL="http://127.0.0.1:$PORT"
SECRET=$(head -c 32 /dev/urandom | base64 | tr -d '/+=' | head -c 43)
TESSERA_ROOT_CLIENT_ID=bench-root TESSERA_ROOT_CLIENT_SECRET=$SECRET RUST_LOG=warn \
  "$BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$DATA" >"$DATA/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; rm -rf "$DATA"' EXIT
for _ in $(seq 1 100); do curl -sf "$URL/healthz" >/dev/null && break; sleep 0.1; done
TOKEN=$(curl -sf -u "bench-root:$SECRET" -d grant_type=client_credentials "$URL/oauth2/v1/token" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')

cat >"$DATA/create.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"name":"fleet","scopes":["read_app"]}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $TOKEN"
done = function(summary, latency, requests)
  io.write(string.format("NON2XX %d\n", summary.errors.status + summary.errors.timeout))
end
LUA

run() { # connections
  wrk -t1 -c"$1" -d"${SECS}s" --latency -s "$DATA/create.lua" "$URL/api/v1/apps" >"$DATA/run.out"
  grep -qx 'NON2XX 0' "$DATA/run.out" || { cat "$DATA/run.out" >&2; exit 1; }
  awk '/Requests\/sec/ {print $2}' "$DATA/run.out"
}
ONE=$(run 1)
MANY=$(run "$CONNS")
APPS=$(curl -sf -H "Authorization: Bearer $TOKEN" "$URL/metrics" |
  awk '/^tessera_registered\{kind="app"\}/ {print $2}')
python3 - "$ONE" "$MANY" "$CONNS" "$APPS" <<'PY'
import sys
one, many, conns, apps = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4]
print(f"app creates, 1 connection:    {one:8.0f}/s")
print(f"app creates, {conns} connections: {many:8.0f}/s   ({many / one:.1f}x one; {apps} apps held)")
PY

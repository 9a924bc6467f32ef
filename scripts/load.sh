#!/usr/bin/env bash
# Load test: the release server on loopback, POST /oauth2/v1/token against GET /healthz in one
# run, so the figure is a ratio that holds on a noisy shared machine (BENCHMARKS.md).
#
#   scripts/load.sh [seconds per run, default 10] [connections, default 64]
#
# Installs wrk when missing (Debian). Traffic goes to 127.0.0.1 only; each run is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-10}"
CONNS="${2:-64}"
THREADS=2

if ! command -v wrk >/dev/null; then
  (apt-get update -qq && apt-get install -y -qq wrk) >/dev/null
fi
cargo build --release --quiet
BIN=target/release/tessera

DATA=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL="http://127.0.0.1:$PORT"
ROOT_ID=load-root
ROOT_SECRET=$(head -c 32 /dev/urandom | base64 | tr -d '/+=' | head -c 43)
TESSERA_ROOT_CLIENT_ID=$ROOT_ID TESSERA_ROOT_CLIENT_SECRET=$ROOT_SECRET RUST_LOG=warn \
  "$BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$DATA" >"$DATA/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; rm -rf "$DATA"' EXIT
for _ in $(seq 1 100); do curl -sf "$URL/healthz" >/dev/null && break; sleep 0.1; done

ROOT_TOKEN=$(curl -sf -u "$ROOT_ID:$ROOT_SECRET" -d grant_type=client_credentials "$URL/oauth2/v1/token" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
APP=$(curl -sf -H "Authorization: Bearer $ROOT_TOKEN" -H 'content-type: application/json' \
  -d '{"name":"load","scopes":["read_app","orders:read"]}' "$URL/api/v1/apps")
CLIENT_ID=$(echo "$APP" | python3 -c 'import json,sys; print(json.load(sys.stdin)["app"]["clientId"])')
SECRET=$(echo "$APP" | python3 -c 'import json,sys; print(json.load(sys.stdin)["app"]["secret"])')
BASIC=$(printf '%s:%s' "$CLIENT_ID" "$SECRET" | base64 -w0)

cat >"$DATA/token.lua" <<LUA
wrk.method = "POST"
wrk.body = "grant_type=client_credentials&scope=orders:read"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $BASIC"
done = function(summary, latency, requests)
  local errors = summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format("NON2XX %d\n", errors))
end
LUA

run() { # name, extra wrk args...
  local name=$1; shift
  wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency "$@" >"$DATA/$name.out"
  local rps p99
  rps=$(awk '/Requests\/sec/ {print $2}' "$DATA/$name.out")
  p99=$(awk '$1=="99%" {print $2}' "$DATA/$name.out")
  echo "$name $rps $p99"
}

echo "# $(date -u +%FT%TZ) $(nproc) cores, $CONNS connections, ${DURATION}s each"
HEALTH=$(run healthz "$URL/healthz")
TOKEN=$(run token -s "$DATA/token.lua" "$URL/oauth2/v1/token")
grep NON2XX "$DATA/token.out" | grep -qx 'NON2XX 0' || { echo "token run had errors:"; cat "$DATA/token.out"; exit 1; }
echo "$HEALTH" | awk '{printf "GET  /healthz          %10.0f req/s   p99 %s\n", $2, $3}'
echo "$TOKEN" | awk '{printf "POST /oauth2/v1/token   %10.0f req/s   p99 %s\n", $2, $3}'
python3 - "$HEALTH" "$TOKEN" <<'PY'
import sys
h, t = sys.argv[1].split(), sys.argv[2].split()
print(f"ratio token/healthz: {float(t[1]) / float(h[1]):.2f}")
PY

#!/usr/bin/env bash
# Server CPU per request, from the server process's own CPU time (utime + stime in /proc)
# around one wrk run: steadier than requests per second on a shared machine, since it does not
# depend on how much of the machine wrk and the neighbours get. Alternate two builds to compare
# them (BENCHMARKS.md):
#
#   for b in old new old new old new; do scripts/cpu-per-request.sh ./tessera-$b token; done
#
#   scripts/cpu-per-request.sh BINARY [token|healthz] [seconds, default 8]
set -euo pipefail
BIN="${1:?usage: scripts/cpu-per-request.sh BINARY [token|healthz] [seconds]}"
WHAT="${2:-token}"
SECS="${3:-8}"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; } >/dev/null
DATA=$(mktemp -d)
PORT=$((18300 + RANDOM % 500))
SECRET=$(head -c 32 /dev/urandom | base64 | tr -d '/+=' | head -c 43)
TESSERA_ROOT_CLIENT_ID=cpu-root TESSERA_ROOT_CLIENT_SECRET=$SECRET RUST_LOG=warn \
  TESSERA_DATA_DIR="$DATA/data" "$BIN" serve --listen "127.0.0.1:$PORT" >/dev/null 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; rm -rf "$DATA"' EXIT
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
BASIC=$(printf 'cpu-root:%s' "$SECRET" | base64 -w0)
cat >"$DATA/token.lua" <<LUA
wrk.method = "POST"
wrk.body = "grant_type=client_credentials"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $BASIC"
LUA
case "$WHAT" in
  token) ARGS=(-s "$DATA/token.lua" "http://127.0.0.1:$PORT/oauth2/v1/token") ;;
  healthz) ARGS=("http://127.0.0.1:$PORT/healthz") ;;
  *) echo "token or healthz" >&2; exit 2 ;;
esac
wrk -t1 -c32 -d2s "${ARGS[@]}" >/dev/null  # warm-up
cpu() { awk '{print $14 + $15}' "/proc/$SERVER/stat"; }
BEFORE=$(cpu)
REQUESTS=$(wrk -t1 -c32 -d"${SECS}s" "${ARGS[@]}" | awk '/requests in/ {print $1}')
AFTER=$(cpu)
TICK=$(getconf CLK_TCK)
awk -v b="$BEFORE" -v a="$AFTER" -v n="$REQUESTS" -v t="$TICK" -v w="$WHAT" \
  'BEGIN { printf "%s: %d requests, server CPU %.2f us per request\n", w, n, (a - b) * 1e6 / t / n }'

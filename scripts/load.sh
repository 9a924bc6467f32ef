#!/usr/bin/env bash
# Load test: the release server on loopback; every token scenario against GET /healthz and
# against each other in one run, so the figures are ratios that hold on a noisy shared machine
# (BENCHMARKS.md). Scenarios: access token only; client_credentials that also opens a durable
# refresh-token family (group committed); refresh-token redemption (rotating, durable).
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
# TESSERA_BIN runs a given build instead (scripts/load-vs.sh compares two).
if [[ -z "${TESSERA_BIN:-}" ]]; then
  cargo build --release --quiet
fi
BIN="${TESSERA_BIN:-target/release/tessera}"

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
RAPP=$(curl -sf -H "Authorization: Bearer $ROOT_TOKEN" -H 'content-type: application/json' \
  -d '{"name":"load-refresh","scopes":["orders:read"],"grantTypes":["client_credentials","refresh_token"]}' "$URL/api/v1/apps")
RBASIC=$(echo "$RAPP" | python3 -c 'import json,sys,base64; a=json.load(sys.stdin)["app"]; print(base64.b64encode((a["clientId"]+":"+a["secret"]).encode()).decode())')
# Refresh tokens to start the redemption chains: one per connection and some to spare.
for _ in $(seq 1 $((CONNS * 2))); do
  curl -sf -H "Authorization: Basic $RBASIC" -d grant_type=client_credentials "$URL/oauth2/v1/token" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["refresh_token"])'
done >"$DATA/refresh-tokens.txt"

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

cat >"$DATA/cc-refresh.lua" <<LUA
wrk.method = "POST"
wrk.body = "grant_type=client_credentials&scope=orders:read"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $RBASIC"
done = function(summary, latency, requests)
  local errors = summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format("NON2XX %d\n", errors))
end
LUA

# Each answer carries the next refresh token; each thread keeps a queue of them.
cat >"$DATA/redeem.lua" <<LUA
local next_id = 1
function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
end
function init(args)
  queue = {}
  local i = 0
  for line in io.lines("$DATA/refresh-tokens.txt") do
    if i % $THREADS == id - 1 then table.insert(queue, line) end
    i = i + 1
  end
end
function request()
  local token = table.remove(queue) or "exhausted"
  return wrk.format("POST", nil, {["Content-Type"] = "application/x-www-form-urlencoded"},
    "grant_type=refresh_token&refresh_token=" .. token)
end
function response(status, headers, body)
  local token = string.match(body, '"refresh_token":"([^"]+)"')
  if token then table.insert(queue, token) end
end
done = function(summary, latency, requests)
  local errors = summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format("NON2XX %d\n", errors))
end
LUA

curl -sf -H 'content-type: application/json' \
  -d '{"username":"loadtester","email":"load@example.com","password":"load test password"}' "$URL/consumer/register" >/dev/null
cat >"$DATA/login.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"username":"loadtester","password":"load test password"}'
wrk.headers["Content-Type"] = "application/json"
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
CCREFRESH=$(run cc-refresh -s "$DATA/cc-refresh.lua" "$URL/oauth2/v1/token")
REDEEM=$(run redeem -s "$DATA/redeem.lua" "$URL/oauth2/v1/token")
LOGINS_ALONE=$(run logins-alone -t1 -c8 -s "$DATA/login.lua" "$URL/consumer/login")
# Logins (Argon2id) hammering the server while tokens are issued: the token rate must hold.
wrk -t1 -c8 -d"${DURATION}s" -s "$DATA/login.lua" "$URL/consumer/login" >"$DATA/logins.out" &
LOGINS_PID=$!
WITHLOGINS=$(run token-with-logins -s "$DATA/token.lua" "$URL/oauth2/v1/token")
wait $LOGINS_PID
LOGIN_RPS=$(awk '/Requests\/sec/ {print $2}' "$DATA/logins.out")
for name in token cc-refresh redeem token-with-logins; do
  grep NON2XX "$DATA/$name.out" | grep -qx 'NON2XX 0' || { echo "$name run had errors:"; cat "$DATA/$name.out"; exit 1; }
done
fmt() { awk -v label="$1" '{printf "%-44s %10.0f req/s   p99 %s\n", label, $2, $3}'; }
echo "$HEALTH" | fmt "GET  /healthz"
echo "$TOKEN" | fmt "POST token: access token only"
echo "$CCREFRESH" | fmt "POST token: + refresh token (durable)"
echo "$REDEEM" | fmt "POST token: refresh redemption (durable)"
echo "$WITHLOGINS" | fmt "POST token: access only, during logins"
echo "$LOGINS_ALONE" | fmt "POST /consumer/login alone (wrk -t1 -c8)"
echo "$LOGIN_RPS" | awk '{printf "%-44s %10.0f req/s (Argon2id, concurrently)\n", "POST /consumer/login during tokens", $1}'
python3 - "$HEALTH" "$TOKEN" "$CCREFRESH" "$REDEEM" "$WITHLOGINS" <<'PY'
import sys
h, t, c, r, w = (float(a.split()[1]) for a in sys.argv[1:])
print(f"ratio access-token / healthz:          {t / h:.2f}")
print(f"ratio with refresh / access-only:      {c / t:.2f}   (target >= 0.5)")
print(f"ratio refresh redemption / access-only: {r / t:.2f}   (target >= 0.4)")
print(f"ratio access-only during logins / alone: {w / t:.2f}   (target >= 0.8)")
PY

#!/usr/bin/env bash
# Server CPU per request, from the server process's own CPU time (utime + stime in /proc)
# around one wrk run: steadier than requests per second on a shared machine, since it does not
# depend on how much of the machine wrk and the neighbours get. Alternate two builds to compare
# them, or two modes of one build (BENCHMARKS.md):
#
#   for b in old new old new old new; do scripts/cpu-per-request.sh ./tessera-$b token; done
#   for m in token token-tls token token-tls token token-tls; do
#     scripts/cpu-per-request.sh target/release/tessera $m 6; done
#
#   scripts/cpu-per-request.sh BINARY [MODE] [seconds, default 8]
#
# Modes, each a client_credentials request of the root app unless said otherwise:
#   token             plain HTTP
#   healthz           GET /healthz, the floor of any request
#   token-tls         the same over HTTPS (TLS 1.3, keep-alive as always with wrk), with a
#                     throwaway self-signed P-256 certificate for 127.0.0.1
#   token-resource    naming a registered resource (RFC 8707) that the root app is granted
#
# Each run fails on any answer but 200.
set -euo pipefail
BIN="${1:?usage: scripts/cpu-per-request.sh BINARY [MODE] [seconds]}"
WHAT="${2:-token}"
SECS="${3:-8}"
WARMUP=2
# One wrk thread: the other core is the server's.
THREADS=1
CONNS=32
case "$WHAT" in
  token | healthz | token-tls | token-resource) ;;
  *) echo "mode: token, healthz, token-tls or token-resource" >&2; exit 2 ;;
esac
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; } >/dev/null
DATA=$(mktemp -d)
PORT=$((18300 + RANDOM % 500))
SCHEME=http
TLS_ARGS=()
CURL=(curl -sf)
trap 'rm -rf "$DATA"' EXIT
if [[ $WHAT == token-tls ]]; then
  command -v openssl >/dev/null || { apt-get update -qq && apt-get install -y -qq openssl; } >/dev/null
  # P-256, as a certificate bought today most likely is. wrk keeps its connections, so the
  # handshakes (CONNS per run) are a rounding error and the run measures the record layer.
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$DATA/key.pem" -out "$DATA/cert.pem" 2>/dev/null
  SCHEME=https
  TLS_ARGS=(--tls-cert "$DATA/cert.pem" --tls-key "$DATA/key.pem")
  CURL=(curl -sfk)
fi
URL="$SCHEME://127.0.0.1:$PORT"
SECRET=$(head -c 32 /dev/urandom | base64 | tr -d '/+=' | head -c 43)
TESSERA_ROOT_CLIENT_ID=cpu-root TESSERA_ROOT_CLIENT_SECRET=$SECRET RUST_LOG=warn \
  TESSERA_DATA_DIR="$DATA/data" "$BIN" serve --listen "127.0.0.1:$PORT" "${TLS_ARGS[@]}" \
  >/dev/null 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; rm -rf "$DATA"' EXIT
for _ in $(seq 1 50); do "${CURL[@]}" "$URL/healthz" >/dev/null && break; sleep 0.1; done
BASIC=$(printf 'cpu-root:%s' "$SECRET" | base64 -w0)
BODY=grant_type=client_credentials
if [[ $WHAT == token-resource ]]; then
  # A resource, granted to the root app with no scopes of its own; tokens for it carry it as aud.
  RESOURCE=https://api.example/
  ROOT_TOKEN=$("${CURL[@]}" -H "Authorization: Basic $BASIC" -d "$BODY" "$URL/oauth2/v1/token" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  ADMIN=(-H "Authorization: Bearer $ROOT_TOKEN" -H 'Content-Type: application/json')
  "${CURL[@]}" "${ADMIN[@]}" -d "{\"identifier\":\"$RESOURCE\",\"name\":\"bench\",\"scopes\":[]}" \
    "$URL/api/v1/resources" >/dev/null
  ROOT_APP=$("${CURL[@]}" "${ADMIN[@]}" "$URL/api/v1/apps" |
    python3 -c 'import json,sys; print(next(a["id"] for a in json.load(sys.stdin)["apps"] if a["clientId"] == "cpu-root"))')
  "${CURL[@]}" "${ADMIN[@]}" -X PUT -d "{\"resources\":{\"$RESOURCE\":[]}}" \
    "$URL/api/v1/apps/$ROOT_APP" >/dev/null
  BODY="$BODY&resource=https%3A%2F%2Fapi.example%2F"
fi
cat >"$DATA/token.lua" <<LUA
wrk.method = "POST"
wrk.body = "$BODY"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $BASIC"
LUA
# One request by hand first: the answer must be what the mode says it measures.
CHECK=(-H "Authorization: Basic $BASIC" -d "$BODY")
if [[ $WHAT != healthz ]]; then
  "${CURL[@]}" "${CHECK[@]}" "$URL/oauth2/v1/token" | python3 -c '
import base64, json, sys
mode, answer = sys.argv[1], json.load(sys.stdin)
payload = answer["access_token"].split(".")[1]
claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
want = {"token_type": "Bearer"}
got = {"token_type": answer["token_type"]}
if mode == "token-resource":
    want["aud"], got["aud"] = "https://api.example/", claims["aud"]
if got != want:
    sys.exit(f"{mode}: the check request got {got}, not {want}")
' "$WHAT"
fi
case "$WHAT" in
  healthz) ARGS=("$URL/healthz") ;;
  *) ARGS=(-s "$DATA/token.lua" "$URL/oauth2/v1/token") ;;
esac
# wrk prints these lines only when they are not zero.
clean() {
  ! grep -qE 'Non-2xx|Socket errors' "$1" ||
    { echo "$WHAT: the run had errors:" >&2; cat "$1" >&2; exit 1; }
}
wrk -t$THREADS -c$CONNS -d${WARMUP}s "${ARGS[@]}" >"$DATA/warm.out"
clean "$DATA/warm.out"
cpu() { awk '{print $14 + $15}' "/proc/$SERVER/stat"; }
BEFORE=$(cpu)
wrk -t$THREADS -c$CONNS -d"${SECS}s" "${ARGS[@]}" >"$DATA/wrk.out"
AFTER=$(cpu)
clean "$DATA/wrk.out"
REQUESTS=$(awk '/requests in/ {print $1}' "$DATA/wrk.out")
RPS=$(awk '/Requests\/sec/ {print $2}' "$DATA/wrk.out")
TICK=$(getconf CLK_TCK)
awk -v b="$BEFORE" -v a="$AFTER" -v n="$REQUESTS" -v t="$TICK" -v w="$WHAT" -v r="$RPS" \
  'BEGIN { printf "%s: %d requests, %.0f req/s, server CPU %.2f us per request\n", w, n, r, (a - b) * 1e6 / t / n }'

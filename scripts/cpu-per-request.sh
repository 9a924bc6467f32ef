#!/usr/bin/env bash
# Server CPU per request, from the server process's own CPU time (utime + stime in /proc)
# around one wrk run: steadier than requests per second on a shared machine, since it does not
# depend on how much of the machine wrk and the neighbours get. Alternate two builds to compare
# them, or two modes of one build (BENCHMARKS.md):
#
#   for b in old new old new old new; do scripts/cpu-per-request.sh ./tessera-$b token; done
#   for m in token token-dpop token token-dpop token token-dpop; do
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
#   token-dpop        with a DPoP proof (RFC 9449) signed ES256, a new one each request
#   token-dpop-eddsa  the same signed EdDSA (Ed25519)
#   token-federated   an app with no secret, authenticated by a workload's RS256 token from a
#                     trusted issuer (one RSA verification before the signature; the token has
#                     no jti, so the one token is sent every time)
#   token-reuse       as token, on a server with token_reuse on: after the first request every
#                     answer is the same token handed out again, with no signature
#
# Token reuse against plain issuance, same run (BENCHMARKS.md):
#
#   for m in token token-reuse token token-reuse token token-reuse; do
#     scripts/cpu-per-request.sh target/release/tessera $m 6; done
#
# DPoP proofs are signed before the server starts, by scripts/dpop-proofs.py, as many as
# DPOP_RATE (default 15000) requests a second would need, since wrk cannot sign. A run that
# outgrows them stops early and fails: raise DPOP_RATE. Each run fails on any answer but 200.
set -euo pipefail
BIN="${1:?usage: scripts/cpu-per-request.sh BINARY [MODE] [seconds]}"
WHAT="${2:-token}"
SECS="${3:-8}"
WARMUP=2
# One wrk thread: the other core is the server's. The DPoP script splits its proofs by thread
# all the same, should this change.
THREADS=1
CONNS=32
case "$WHAT" in
  token | healthz | token-tls | token-resource | token-dpop | token-dpop-eddsa | token-federated | token-reuse) ;;
  *) echo "mode: token, healthz, token-tls, token-resource, token-dpop, token-dpop-eddsa, token-federated or token-reuse" >&2; exit 2 ;;
esac
HERE=$(cd "$(dirname "$0")" && pwd)
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
if [[ $WHAT == token-dpop* || $WHAT == token-federated ]]; then
  PY=python3
  if ! python3 -c 'import cryptography' 2>/dev/null; then
    # A venv of its own in /tmp, kept between runs, rather than anything installed system-wide.
    PY=/tmp/tessera-bench-venv/bin/python3
    [[ -x $PY ]] || python3 -m venv /tmp/tessera-bench-venv
    "$PY" -c 'import cryptography' 2>/dev/null || /tmp/tessera-bench-venv/bin/pip install -q cryptography
  fi
fi
if [[ $WHAT == token-dpop* ]]; then
  ALG=ES256
  [[ $WHAT == token-dpop-eddsa ]] && ALG=EdDSA
  RATE="${DPOP_RATE:-15000}"
  # htu is exactly the URL posted to. Separate files for the warm-up and the measured run, each
  # wrk reading its own from the start: no jti is sent twice. One more for the check below.
  "$PY" "$HERE/dpop-proofs.py" "$ALG" "$URL/oauth2/v1/token" "$DATA/check.txt:1" \
    "$DATA/warm.txt:$((RATE * WARMUP))" "$DATA/run.txt:$((RATE * SECS))"
fi
CONFIG_ARGS=()
if [[ $WHAT == token-reuse ]]; then
  echo 'token_reuse = true' >"$DATA/reuse.toml"
  CONFIG_ARGS=(--config "$DATA/reuse.toml")
fi
SECRET=$(head -c 32 /dev/urandom | base64 | tr -d '/+=' | head -c 43)
TESSERA_ROOT_CLIENT_ID=cpu-root TESSERA_ROOT_CLIENT_SECRET=$SECRET RUST_LOG=warn \
  TESSERA_DATA_DIR="$DATA/data" "$BIN" serve --listen "127.0.0.1:$PORT" "${TLS_ARGS[@]}" \
  "${CONFIG_ARGS[@]}" >/dev/null 2>&1 &
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
AUTH="Basic $BASIC"
if [[ $WHAT == token-federated ]]; then
  # A trusted issuer given its keys (nothing to fetch) and an app that accepts its workload.
  ISS=https://ci.example
  "$PY" "$HERE/workload-token.py" "$ISS" repo:acme/web:ref:refs/heads/main \
    "$URL/oauth2/v1/token" >"$DATA/workload.json"
  ROOT_TOKEN=$("${CURL[@]}" -H "Authorization: $AUTH" -d "$BODY" "$URL/oauth2/v1/token" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  ADMIN=(-H "Authorization: Bearer $ROOT_TOKEN" -H 'Content-Type: application/json')
  python3 -c 'import json,sys; print(json.dumps({"issuer": sys.argv[1], "jwks": json.load(open(sys.argv[2]))["jwks"]}))' \
    "$ISS" "$DATA/workload.json" | "${CURL[@]}" "${ADMIN[@]}" -d @- "$URL/api/v1/issuers" >/dev/null
  APP_ID=$("${CURL[@]}" "${ADMIN[@]}" -d "{\"name\":\"deploy\",\"federatedIdentities\":[{\"issuer\":\"$ISS\",\"subject\":\"repo:acme/*:ref:refs/heads/main\"}]}" \
    "$URL/api/v1/apps" | python3 -c 'import json,sys; print(json.load(sys.stdin)["app"]["clientId"])')
  ASSERTION=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["token"])' "$DATA/workload.json")
  BODY="$BODY&client_id=$APP_ID&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=$ASSERTION"
  AUTH=
fi
cat >"$DATA/token.lua" <<LUA
wrk.method = "POST"
wrk.body = "$BODY"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
LUA
[[ -n $AUTH ]] && echo "wrk.headers[\"Authorization\"] = \"$AUTH\"" >>"$DATA/token.lua"
# Each thread takes every THREADS-th proof of the file it is given (after --) and sends each
# once. Out of proofs, it stops and counts the shortfall, which fails the run: a replayed proof
# would be refused and a request without one would measure something else.
cat >"$DATA/dpop.lua" <<LUA
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("id", #threads)
end
function init(args)
  proofs = {}
  local i = 0
  for line in io.lines(args[1]) do
    if i % $THREADS == id - 1 then table.insert(proofs, line) end
    i = i + 1
  end
  sent = 0
  short = 0
end
function request()
  sent = sent + 1
  local proof = proofs[sent]
  if not proof then
    short = short + 1
    wrk.thread:stop()
    proof = "exhausted"
  end
  return wrk.format("POST", "/oauth2/v1/token", {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Authorization"] = "Basic $BASIC",
    ["DPoP"] = proof,
  }, "$BODY")
end
function done(summary, latency, requests)
  local short = 0
  for _, thread in ipairs(threads) do short = short + thread:get("short") end
  if short > 0 then io.write(string.format("OUT OF PROOFS %d\n", short)) end
end
LUA
# One request by hand first: the answer must be what the mode says it measures.
CHECK=(-d "$BODY")
[[ -n $AUTH ]] && CHECK+=(-H "Authorization: $AUTH")
[[ $WHAT == token-dpop* ]] && CHECK+=(-H "DPoP: $(cat "$DATA/check.txt")")
if [[ $WHAT == token-reuse ]]; then
  FIRST=$("${CURL[@]}" "${CHECK[@]}" "$URL/oauth2/v1/token")
  SECOND=$("${CURL[@]}" "${CHECK[@]}" "$URL/oauth2/v1/token")
  python3 -c '
import json, sys
first, second = json.loads(sys.argv[1]), json.loads(sys.argv[2])
if first["access_token"] != second["access_token"]:
    sys.exit("token-reuse: the second request got another token")
' "$FIRST" "$SECOND"
fi
if [[ $WHAT != healthz ]]; then
  "${CURL[@]}" "${CHECK[@]}" "$URL/oauth2/v1/token" | python3 -c '
import base64, json, sys
mode, answer = sys.argv[1], json.load(sys.stdin)
payload = answer["access_token"].split(".")[1]
claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
want = {"token_type": "DPoP" if mode.startswith("token-dpop") else "Bearer"}
got = {"token_type": answer["token_type"]}
if mode == "token-resource":
    want["aud"], got["aud"] = "https://api.example/", claims["aud"]
if mode.startswith("token-dpop"):
    want["cnf"], got["cnf"] = True, "jkt" in claims.get("cnf", {})
if got != want:
    sys.exit(f"{mode}: the check request got {got}, not {want}")
' "$WHAT"
fi
case "$WHAT" in
  healthz) ARGS=("$URL/healthz") ;;
  token-dpop*) ARGS=(-s "$DATA/dpop.lua" "$URL/oauth2/v1/token" --) ;;
  *) ARGS=(-s "$DATA/token.lua" "$URL/oauth2/v1/token") ;;
esac
WARM_ARGS=("${ARGS[@]}")
[[ $WHAT == token-dpop* ]] && WARM_ARGS+=("$DATA/warm.txt") && ARGS+=("$DATA/run.txt")
# wrk prints these lines only when they are not zero.
clean() {
  ! grep -qE 'Non-2xx|Socket errors|OUT OF PROOFS' "$1" ||
    { echo "$WHAT: the run had errors:" >&2; cat "$1" >&2; exit 1; }
}
wrk -t$THREADS -c$CONNS -d${WARMUP}s "${WARM_ARGS[@]}" >"$DATA/warm.out"
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

#!/usr/bin/env bash
# Black-box tests of Tessera with real third-party OAuth2/JOSE client libraries.
#
#   tests/blackbox/run.sh            # builds the server with cargo, then tests it
#   TESSERA_BIN=path/to/tessera tests/blackbox/run.sh
#
# Starts one server on a free loopback port with a temporary data dir, runs the Python suite
# (pytest: Authlib, requests-oauthlib, PyJWT, requests), the JS suite (node --test: jose,
# openid-client, oauth4webapi, headless Chromium) and then a property-based API fuzzer
# (schemathesis) against /openapi.json for SCHEMATHESIS_SECONDS (default 90), prints the
# summaries and exits non-zero if any failed.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"

log() { printf '[blackbox] %s\n' "$*" >&2; }

# --- dependencies -----------------------------------------------------------------------------
PYTHON="${PYTHON:-python3}"
if [[ ! -x "$HERE/.venv/bin/python" ]]; then
  log "creating venv"
  "$PYTHON" -m venv "$HERE/.venv"
fi
log "installing Python deps"
"$HERE/.venv/bin/python" -m pip install --quiet --disable-pip-version-check \
  -r "$HERE/requirements.txt"

log "installing JS deps"
if [[ -f "$HERE/js/package-lock.json" ]]; then
  (cd "$HERE/js" && npm ci --no-audit --no-fund --loglevel=error)
else
  (cd "$HERE/js" && npm install --no-audit --no-fund --loglevel=error)
fi

# --- server -----------------------------------------------------------------------------------
if [[ -z "${TESSERA_BIN:-}" ]]; then
  log "building tessera"
  (cd "$ROOT" && cargo build --quiet)
  TESSERA_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/tessera"
fi
[[ -x "$TESSERA_BIN" ]] || { log "no server binary at $TESSERA_BIN"; exit 1; }

WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

PORT="$("$HERE/.venv/bin/python" -c \
  'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')"
export TESSERA_URL="http://127.0.0.1:$PORT"
export TESSERA_ROOT_CLIENT_ID="bb-root-$$"
export TESSERA_ROOT_CLIENT_SECRET="$("$HERE/.venv/bin/python" -c 'import secrets; print(secrets.token_urlsafe(32))')"

log "starting $TESSERA_BIN on $TESSERA_URL"
TESSERA_DATA_DIR="$WORK/data" "$TESSERA_BIN" serve --listen "127.0.0.1:$PORT" \
  >"$WORK/server.out" 2>"$WORK/server.err" &
SERVER_PID=$!

for _ in $(seq 1 100); do
  if curl -fsS "$TESSERA_URL/healthz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    log "server exited early:"; cat "$WORK/server.out" "$WORK/server.err" >&2; exit 1
  fi
  sleep 0.1
done
curl -fsS "$TESSERA_URL/healthz" >/dev/null || { log "server not healthy"; cat "$WORK/server.err" >&2; exit 1; }

# --- suites -----------------------------------------------------------------------------------
# What a reader may want to look at afterwards (the Swagger UI screenshot).
export TESSERA_ARTIFACTS="${TESSERA_ARTIFACTS:-$ROOT/target/blackbox}"
mkdir -p "$TESSERA_ARTIFACTS"
py_rc=0
(cd "$HERE/python" && "$HERE/.venv/bin/python" -m pytest -q -p no:cacheprovider) \
  2>&1 | tee "$WORK/pytest.log" || py_rc=$?
js_rc=0
(cd "$HERE/js" && node --test) 2>&1 | tee "$WORK/node.log" || js_rc=$?

# The fuzzer last: it changes whatever its admin token may change. Its own venv, since its
# dependencies are not the suites' pinned ones.
log "installing schemathesis"
if [[ ! -x "$HERE/.venv-fuzz/bin/python" ]]; then "$PYTHON" -m venv "$HERE/.venv-fuzz"; fi
"$HERE/.venv-fuzz/bin/python" -m pip install --quiet --disable-pip-version-check \
  -r "$HERE/fuzz-requirements.txt"
field() { "$HERE/.venv/bin/python" -c "import json,sys; print(json.load(sys.stdin)$1)"; }
ADMIN_TOKEN="$(curl -fsS -u "$TESSERA_ROOT_CLIENT_ID:$TESSERA_ROOT_CLIENT_SECRET" \
  -d grant_type=client_credentials "$TESSERA_URL/oauth2/v1/token" | field '["access_token"]')"
SERVICE_KEY="$(curl -fsS -H "Authorization: Bearer $ADMIN_TOKEN" -H 'content-type: application/json' \
  -d '{"name":"fuzzed"}' "$TESSERA_URL/api/v1/services" | field '["apiKey"]')"
st_rc=0
# From the work directory, where it keeps its example database. One worker: with two threads,
# Hypothesis's ast.parse calls race inside CPython 3.11 ("AST constructor recursion depth
# mismatch") and schemathesis reports that as an error of ours.
(cd "$WORK" && SCHEMATHESIS_HOOKS="$HERE/fuzz_hooks.py" "$HERE/.venv-fuzz/bin/schemathesis" run "$TESSERA_URL/openapi.json" \
  -H "Authorization: Bearer $ADMIN_TOKEN" -H "X-API-Key: $SERVICE_KEY" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --max-time "${SCHEMATHESIS_SECONDS:-90}" --workers 1 --no-color) \
  >"$TESSERA_ARTIFACTS/schemathesis.log" 2>&1 || st_rc=$?
# Its findings in full (they come before its summary), or the summary alone.
if [[ $st_rc -ne 0 ]]; then cat "$TESSERA_ARTIFACTS/schemathesis.log"; else
  sed -n '/= SUMMARY =/,$p' "$TESSERA_ARTIFACTS/schemathesis.log"; fi

if [[ $py_rc -ne 0 || $js_rc -ne 0 || $st_rc -ne 0 ]]; then
  log "server log (stderr, last 40 lines):"; tail -n 40 "$WORK/server.err" >&2 || true
fi

echo
echo "== black-box summary =="
# pytest's closing line and node's closing counters, verbatim, then one combined plain line.
grep -E '^=* *[0-9]+ (passed|failed|errors?|skipped|xfailed|xpassed|deselected)' "$WORK/pytest.log" \
  | tail -n 1 || echo "pytest: no summary line (exit $py_rc)"
grep -E '^# (tests|suites|pass|fail|cancelled|skipped|todo) [0-9]+$' "$WORK/node.log" \
  || echo "node: no summary lines (exit $js_rc)"
"$HERE/.venv/bin/python" - "$WORK/pytest.log" "$WORK/node.log" <<'PY'
import re, sys
py = open(sys.argv[1]).read().splitlines()
line = next((l for l in reversed(py) if re.search(r"\d+ (passed|failed|errors?|skipped|xfailed)", l)), "")
n = lambda pat, s: sum(int(m) for m in re.findall(pat, s))
passed = n(r"(\d+) passed", line)
failed = n(r"(\d+) failed", line) + n(r"(\d+) errors?", line)
skipped = n(r"(\d+) skipped", line) + n(r"(\d+) xfailed", line)
js = open(sys.argv[2]).read()
passed += n(r"(?m)^# pass (\d+)$", js)
failed += n(r"(?m)^# fail (\d+)$", js) + n(r"(?m)^# cancelled (\d+)$", js)
skipped += n(r"(?m)^# skipped (\d+)$", js) + n(r"(?m)^# todo (\d+)$", js)
print(f"blackbox: {passed} passed, {failed} failed, {skipped} skipped")
PY

grep -E '^=+ .*(passed|failures?|errors?|warnings?).* in [0-9.]+s' "$TESSERA_ARTIFACTS/schemathesis.log" | tail -n 1 \
  | sed 's/^/schemathesis: /' || echo "schemathesis: no summary line (exit $st_rc)"

[[ $py_rc -eq 0 && $js_rc -eq 0 && $st_rc -eq 0 ]]

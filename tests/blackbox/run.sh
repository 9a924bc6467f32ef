#!/usr/bin/env bash
# Black-box tests of Tessera with real third-party OAuth2/JOSE client libraries.
#
#   tests/blackbox/run.sh            # builds the server with cargo, then tests it
#   TESSERA_BIN=path/to/tessera tests/blackbox/run.sh
#
# Starts one server on a free loopback port with a temporary data dir, runs the Python suite
# (pytest: Authlib, requests-oauthlib, PyJWT, requests) and then the JS suite (node --test: jose,
# openid-client, oauth4webapi), prints both summaries and exits non-zero if either failed.
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
py_rc=0
(cd "$HERE/python" && "$HERE/.venv/bin/python" -m pytest -q -p no:cacheprovider) \
  2>&1 | tee "$WORK/pytest.log" || py_rc=$?
js_rc=0
(cd "$HERE/js" && node --test) 2>&1 | tee "$WORK/node.log" || js_rc=$?

if [[ $py_rc -ne 0 || $js_rc -ne 0 ]]; then
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

[[ $py_rc -eq 0 && $js_rc -eq 0 ]]
